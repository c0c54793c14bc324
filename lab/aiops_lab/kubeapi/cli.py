"""`aiops lab kubeapi`: serve the lab cluster (Online Boutique) over the Kubernetes API alone,
without the shop simulation; useful to try the executor or kubectl-like scripts against it."""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path
from types import FrameType

from aiops_lab.cluster import Cluster, ClusterConfig
from aiops_lab.kubeapi.server import LabApiServer


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port (default: 0, a free port)")
    p.add_argument(
        "--kubeconfig",
        type=Path,
        default=Path(".aiops-lab/kubeconfig"),
        help="where to write the kubeconfig for the served API (default: .aiops-lab/kubeconfig)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed for generated names (default: 0)")


def run(args: argparse.Namespace) -> int:
    cluster = Cluster.boutique(ClusterConfig(seed=args.seed))
    server = LabApiServer(cluster, args.host, args.port).start()
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        path = server.write_kubeconfig(args.kubeconfig)
        print(f"lab Kubernetes API: {server.url}")
        print(f"kubeconfig: {path.resolve()}  (export KUBECONFIG={path.resolve()})")
        print("Ctrl-C to stop", flush=True)
        stop.wait()
    finally:
        server.stop()
    return 0
