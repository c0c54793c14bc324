"""Child processes and ports: what `aiops dev`, the lab and the tests share.

A child started with `die_with_parent` gets SIGTERM when the thread that started it dies (Linux
only: PR_SET_PDEATHSIG), so a SIGKILLed parent leaves nothing behind; `stop_process` is the one
way to stop one (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import signal
import socket
import subprocess
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """preexec_fn: the child gets SIGTERM when the thread that started it dies."""
    if not sys.platform.startswith("linux"):
        return  # prctl is Linux's; elsewhere the stack stops its children on exit instead
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def stop_process(proc: subprocess.Popen[bytes], timeout_s: float = 20.0) -> None:
    """SIGTERM, and SIGKILL if it has not exited within `timeout_s`."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def port_free(ip: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((ip, port))
        except OSError:
            return False
        return True


def any_free_port(ip: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((ip, 0))
        port: int = sock.getsockname()[1]
        return port
