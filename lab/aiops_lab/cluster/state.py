"""The cluster's state: the object store, the kubelet's per-pod runtime, and the event recorder.

Not thread-safe by itself: `Cluster` holds one lock around every use.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiops_lab.cluster.objects import Obj, rfc3339, safe_encode


@dataclass(frozen=True)
class NodeSpec:
    name: str
    cpu: str = "4"
    memory: str = "16Gi"
    pods: int = 110
    zone: str = "lab-a"


DEFAULT_NODES = (
    NodeSpec("node-a", zone="lab-a"),
    NodeSpec("node-b", zone="lab-b"),
    NodeSpec("node-c", zone="lab-c"),
)


@dataclass(frozen=True)
class ClusterConfig:
    """Timings of the simulated kubelet and controllers (seconds)."""

    nodes: tuple[NodeSpec, ...] = DEFAULT_NODES
    pod_start_s: float = 0.3  # scheduled -> container running and ready
    pod_terminate_s: float = 0.3  # deletion -> object gone (graceful termination)
    backoff_base_s: float = 10.0  # CrashLoopBackOff: 10s, 20s, 40s, ... as the kubelet does
    backoff_cap_s: float = 300.0
    # True when a simulation plays the readiness probe: a container that (re)starts is not ready
    # until set_pod_ready(..., True) says so. False: ready as soon as it runs (standalone API).
    external_readiness: bool = False
    event_ttl_s: float = 3600.0
    max_events: int = 2000
    max_log_lines: int = 500
    seed: int = 0


@dataclass
class PodRuntime:
    """What the kubelet knows of a pod beyond its API object."""

    uid: str
    namespace: str
    name: str
    container_id: str = ""
    start_at: float | None = None  # when the container (re)starts
    running: bool = False
    started_at: float = 0.0
    restarts: int = 0
    last_terminated: Obj | None = None
    waiting_reason: str = "ContainerCreating"
    waiting_message: str = ""
    ready_override: bool | None = None
    terminate_at: float | None = None
    unschedulable_reported: bool = False
    logs: list[str] = field(default_factory=list)
    logged: int = 0  # lines written by the current container (logs keeps only the last ones)
    previous_logs: list[str] = field(default_factory=list)
    previous_logged: int = 0


Key = tuple[str, str]


class Store:
    """Objects by resource plural, then (namespace, name); one resourceVersion counter."""

    def __init__(self) -> None:
        self._objects: dict[str, dict[Key, Obj]] = {}
        self.resource_version = 0

    def next_rv(self) -> str:
        self.resource_version += 1
        return str(self.resource_version)

    def get(self, plural: str, namespace: str, name: str) -> Obj | None:
        return self._objects.get(plural, {}).get((namespace, name))

    def put(self, plural: str, obj: Obj) -> Obj:
        m = obj["metadata"]
        m["resourceVersion"] = self.next_rv()
        self._objects.setdefault(plural, {})[(m.get("namespace", ""), m["name"])] = obj
        return obj

    def touch(self, obj: Obj) -> None:
        """Record a change made in place to a stored object."""
        obj["metadata"]["resourceVersion"] = self.next_rv()

    def remove(self, plural: str, namespace: str, name: str) -> Obj | None:
        return self._objects.get(plural, {}).pop((namespace, name), None)

    def items(self, plural: str, namespace: str | None = None) -> list[Obj]:
        objs: Iterable[Obj] = self._objects.get(plural, {}).values()
        if namespace is not None:
            objs = (o for o in objs if o["metadata"].get("namespace", "") == namespace)
        return list(objs)


class State:
    def __init__(self, config: ClusterConfig) -> None:
        self.config = config
        self.store = Store()
        self.runtime: dict[str, PodRuntime] = {}
        self.rng = random.Random(config.seed)  # noqa: S311 - names, not secrets
        self._event_keys: dict[tuple[str, ...], str] = {}
        # Deployment uid -> (when the rollout last made progress, what the progress was).
        self.progress: dict[str, tuple[float, tuple[int, int, str]]] = {}

    def new_uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def random_suffix(self, length: int = 5) -> str:
        return safe_encode(self.rng.getrandbits(64).to_bytes(8, "big"), length)

    def record_event(
        self,
        now: float,
        involved: Obj,
        reason: str,
        message: str,
        type_: str = "Normal",
        component: str = "lab-controller",
        host: str | None = None,
    ) -> None:
        """Record (or count again, as the apiserver's event aggregation does) an Event."""
        m = involved.get("metadata", {})
        namespace = m.get("namespace") or "default"
        kind = involved.get("kind", "")
        name = m.get("name", "")
        key = (namespace, kind, name, reason, message, type_)
        at = rfc3339(now)
        existing_name = self._event_keys.get(key)
        if existing_name is not None:
            seen = self.store.get("events", namespace, existing_name)
            if seen is not None:
                seen["count"] = int(seen.get("count", 1)) + 1
                seen["lastTimestamp"] = at
                self.store.touch(seen)
                return
        event_name = f"{name}.{self.rng.getrandbits(64):016x}"
        source: Obj = {"component": component}
        if host:
            source["host"] = host
        event: Obj = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": event_name,
                "namespace": namespace,
                "uid": self.new_uid(),
                "creationTimestamp": at,
            },
            "involvedObject": {
                "apiVersion": involved.get("apiVersion", "v1"),
                "kind": kind,
                "name": name,
                "namespace": m.get("namespace", ""),
                "uid": m.get("uid", ""),
            },
            "reason": reason,
            "message": message,
            "type": type_,
            "count": 1,
            "firstTimestamp": at,
            "lastTimestamp": at,
            "source": source,
            "reportingComponent": component,
            "reportingInstance": host or "",
        }
        if not involved.get("metadata", {}).get("namespace"):
            event["involvedObject"].pop("namespace")
        self.store.put("events", event)
        self._event_keys[key] = event_name
        self._prune_events(now)

    def _prune_events(self, now: float) -> None:
        events = self.store.items("events")
        if len(events) <= self.config.max_events:
            return
        events.sort(key=lambda e: e.get("lastTimestamp", ""))
        cutoff = rfc3339(now - self.config.event_ttl_s)
        excess = len(events) - self.config.max_events
        for i, event in enumerate(events):
            if i >= excess and event.get("lastTimestamp", "") >= cutoff:
                break
            m = event["metadata"]
            self.store.remove("events", m["namespace"], m["name"])
        live = {
            (e["metadata"]["namespace"], e["metadata"]["name"]) for e in self.store.items("events")
        }
        self._event_keys = {k: v for k, v in self._event_keys.items() if (k[0], v) in live}
