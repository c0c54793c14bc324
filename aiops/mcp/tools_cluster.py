"""Read tools over the Kubernetes API (read-only): a workload, events, a pod's log."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from fastmcp import FastMCP
from fastmcp.exceptions import ToolError

from aiops.mcp.backends import Backends
from aiops.mcp.common import BACKENDS, READ_ONLY, TAGS, bounded, k8s_name
from aiops.mcp.models import PodLog, WorkloadView

T = TypeVar("T")


def _read(fn: Callable[[], T]) -> T:
    """A read through the Kubernetes reader; its failures become ToolErrors."""
    from aiops.agent.ports import ClusterReadError

    try:
        return fn()
    except ClusterReadError as exc:
        raise ToolError(str(exc)) from exc


async def describe_workload(namespace: str, name: str, b: Backends = BACKENDS) -> WorkloadView:
    """A Deployment: replicas, revision, images, its pods (phase, restarts, last
    termination reason), ReplicaSets and its recent events."""
    from aiops.agent.metrics import workload_of_pod

    namespace, name = k8s_name(namespace, "namespace"), k8s_name(name, "name")
    kube = b.kube()

    def dumped(items: list[Any], keep: Callable[[Any], bool]) -> list[dict[str, object]]:
        return [i.model_dump(mode="json") for i in items if keep(i)]

    # Four independent reads at once: the answer waits for the slowest, not their sum.
    deps, pods, rss, events = await asyncio.gather(
        asyncio.to_thread(_read, lambda: kube.list_deployments(namespace)),
        asyncio.to_thread(_read, lambda: kube.list_pods(namespace)),
        asyncio.to_thread(_read, lambda: kube.list_replicasets(namespace)),
        asyncio.to_thread(_read, lambda: kube.list_events(namespace)),
    )
    found = dumped(deps, lambda d: d.name == name)
    if not found:
        raise ToolError(
            f"no Deployment {name!r} in namespace {namespace!r}; "
            "get_topology lists the services of a namespace"
        )
    return WorkloadView(
        deployment=found[0],
        pods=dumped(pods, lambda p: workload_of_pod(p.name) == name),
        replicasets=dumped(rss, lambda r: r.deployment == name),
        events=dumped(
            events, lambda e: e.object_name == name or e.object_name.startswith(name + "-")
        )[-30:],
    )


def get_events(
    namespace: str,
    object_name: str | None = None,
    warnings_only: bool = False,
    limit: int = 50,
    b: Backends = BACKENDS,
) -> list[dict[str, object]]:
    """Kubernetes events of a namespace (oldest first, the newest `limit`), optionally
    only those about one object (name or name prefix) or only warnings."""
    namespace = k8s_name(namespace, "namespace")
    bounded(limit, "limit", 1, 500)
    kube = b.kube()
    picked = [
        e.model_dump(mode="json")
        for e in _read(lambda: kube.list_events(namespace))
        if (object_name is None or e.object_name.startswith(object_name))
        and (not warnings_only or e.type == "Warning")
    ]
    return picked[-limit:]


def get_pod_logs(
    namespace: str,
    pod: str,
    tail_lines: int = 200,
    max_bytes: int = 16_000,
    b: Backends = BACKENDS,
) -> PodLog:
    """The last lines of a pod's log, capped in size, with secrets (tokens, passwords,
    keys) replaced by [REDACTED]."""
    namespace, pod = k8s_name(namespace, "namespace"), k8s_name(pod, "pod")
    bounded(tail_lines, "tail_lines", 1, 2000)
    bounded(max_bytes, "max_bytes", 256, 64_000)
    kube = b.kube()
    # Redacted before the cut as well as on the way out: a key the cut splits is still masked.
    text = b.redactor.text(_read(lambda: kube.pod_logs(namespace, pod, tail_lines=tail_lines)))
    truncated = len(text.encode()) > max_bytes
    if truncated:
        text = text.encode()[-max_bytes:].decode(errors="ignore")
        text = text.split("\n", 1)[-1]  # drop the cut first line
    return PodLog(namespace=namespace, pod=pod, log=text, truncated=truncated)


def register(mcp: FastMCP) -> None:
    for tool in (describe_workload, get_events, get_pod_logs):
        mcp.tool(tool, annotations=READ_ONLY, tags=TAGS)
