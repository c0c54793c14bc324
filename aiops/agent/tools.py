"""The read-only tools the model may call, over the same MetricsSource and ClusterReader.

Errors come back to the model as data (`{"error": ...}`), never as exceptions, and every result is
cut to a size limit. There is no tool that changes anything.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiops.agent.ports import ClusterReader, MetricsSource

TOOL_SPECS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "query_prometheus",
            "description": "Run a PromQL range query around the anomaly; returns per-series "
            "first/min/max/last values.",
            "parameters": {
                "type": "object",
                "properties": {
                    "promql": {"type": "string"},
                    "minutes_before": {"type": "integer", "minimum": 1, "maximum": 120},
                    "minutes_after": {"type": "integer", "minimum": 0, "maximum": 60},
                },
                "required": ["promql"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "list_pods",
            "description": "Pods of the namespace: node, phase, restarts, waiting reasons.",
            "parameters": {"type": "object", "properties": {}},
        },
    },
    {
        "type": "function",
        "function": {
            "name": "list_events",
            "description": "Recent Kubernetes events of the namespace.",
            "parameters": {"type": "object", "properties": {}},
        },
    },
    {
        "type": "function",
        "function": {
            "name": "list_rollouts",
            "description": "ReplicaSets with their deployment revision, creation time and images.",
            "parameters": {"type": "object", "properties": {}},
        },
    },
    {
        "type": "function",
        "function": {
            "name": "list_nodes",
            "description": "Nodes with their conditions and whether they are cordoned.",
            "parameters": {"type": "object", "properties": {}},
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_pod_logs",
            "description": "The last lines of a pod's log (size-capped).",
            "parameters": {
                "type": "object",
                "properties": {
                    "pod": {"type": "string"},
                    "tail_lines": {"type": "integer", "minimum": 1, "maximum": 200},
                },
                "required": ["pod"],
            },
        },
    },
]

TOOL_NAMES = frozenset(t["function"]["name"] for t in TOOL_SPECS)


class ReadOnlyTools:
    def __init__(
        self,
        metrics: MetricsSource,
        cluster: ClusterReader | None,
        namespace: str,
        anomaly_time: float,
        *,
        max_chars: int = 4000,
    ) -> None:
        self._metrics = metrics
        self._cluster = cluster
        self._ns = namespace
        self._at = datetime.fromtimestamp(anomaly_time, tz=UTC)
        self._max = max_chars

    def call(self, name: str, arguments: str) -> str:
        """Run one tool; the answer is JSON text for the model, errors included."""
        try:
            args = json.loads(arguments or "{}")
        except json.JSONDecodeError as exc:
            return self._out({"error": f"arguments are not JSON: {exc.msg}"})
        if not isinstance(args, dict):
            return self._out({"error": "arguments must be a JSON object"})
        handlers: dict[str, Callable[[dict[str, Any]], Any]] = {
            "query_prometheus": self._query,
            "list_pods": lambda _: self._need_cluster().list_pods(self._ns),
            "list_events": lambda _: self._need_cluster().list_events(self._ns)[-30:],
            "list_rollouts": lambda _: self._need_cluster().list_replicasets(self._ns),
            "list_nodes": lambda _: self._need_cluster().list_nodes(),
            "get_pod_logs": self._logs,
        }
        handler = handlers.get(name)
        if handler is None:
            return self._out({"error": f"unknown tool {name!r}; tools: {sorted(TOOL_NAMES)}"})
        try:
            result = handler(args)
        except Exception as exc:
            return self._out({"error": f"{type(exc).__name__}: {exc}"})
        return self._out(result)

    def _need_cluster(self) -> ClusterReader:
        if self._cluster is None:
            raise LookupError("no Kubernetes access is configured")
        return self._cluster

    def _query(self, args: dict[str, Any]) -> Any:
        promql = str(args.get("promql", "")).strip()
        if not promql:
            raise ValueError("promql is required")
        before = min(max(int(args.get("minutes_before", 30)), 1), 120)
        after = min(max(int(args.get("minutes_after", 10)), 0), 60)
        start = self._at - timedelta(minutes=before)
        end = min(self._at + timedelta(minutes=after), datetime.now(UTC))
        step = max(15, math.ceil((end - start).total_seconds() / 120))  # whole seconds
        series = self._metrics.query_range(promql, start, end, step)
        out = []
        for s in series[:10]:
            vals = [v for v in s.values if math.isfinite(v)]
            out.append(
                {
                    "labels": s.labels,
                    "first": vals[0] if vals else None,
                    "min": min(vals) if vals else None,
                    "max": max(vals) if vals else None,
                    "last": vals[-1] if vals else None,
                    "points": len(vals),
                }
            )
        return {"series": out, "total_series": len(series)}

    def _logs(self, args: dict[str, Any]) -> Any:
        pod = str(args.get("pod", "")).strip()
        if not pod:
            raise ValueError("pod is required")
        tail = min(max(int(args.get("tail_lines", 100)), 1), 200)
        return {"pod": pod, "log": self._need_cluster().pod_logs(self._ns, pod, tail_lines=tail)}

    def _out(self, result: Any) -> str:
        text = json.dumps(_plain(result), default=str, separators=(",", ":"))
        if len(text) > self._max:
            text = text[: self._max] + "...(truncated)"
        return text


def _plain(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", exclude_defaults=True)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
