"""The cyclic garbage collector paused while a detection pass builds its answers.

A steady pass at 100,000 series allocates a few hundred thousand small objects (the parsed
answers' label dicts and values, the split and renamed series), almost none in a cycle: they are
freed by reference counting. Each 700 allocations start a young collection, and every so often
a full one walks the whole heap, which holds the detectors' state and the previous answers
(millions of objects): measured at 100,000 series on two busy cores, 3.9-4.1 s per steady pass
with the collector running, 2.3 s paused (bench/bench_detect_pass.py prints both). Paused, not
off: the collector resumes when the last pass running in the process ends, and whatever cycles
a pass left are collected then as usual.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_holders = 0
_resume = False  # whether the collector was running when the first holder paused it


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic collection inside; nested and concurrent holders share one pause."""
    global _holders, _resume
    with _lock:
        if _holders == 0:
            _resume = gc.isenabled()
            gc.disable()
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and _resume:
                gc.enable()
