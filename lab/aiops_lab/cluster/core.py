"""The lab cluster's core: its state under one lock, advanced in time by the controllers.

Every mutation reconciles before it returns, so a scale or a rollout is visible at once; what takes
time in a real cluster (containers starting, graceful termination, CrashLoopBackOff) advances on
`tick()`, which `start()` calls from a background thread every `interval` seconds. The operations
on top live in api.py (the objects), subresources.py (scale, eviction, logs) and cluster.py (the
port the shop simulation uses).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Self

from aiops_lab.cluster import controllers
from aiops_lab.cluster.errors import NotFoundError, not_found
from aiops_lab.cluster.nodes import put_namespace, put_node
from aiops_lab.cluster.objects import Obj
from aiops_lab.cluster.resources import RESOURCES, ResourceType
from aiops_lab.cluster.state import ClusterConfig, State

FULL_PASS_S = 1.0


class ClusterCore:
    """The state, the lock every operation holds, the clock and the reconcile loop."""

    def __init__(
        self, config: ClusterConfig | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.config = config or ClusterConfig()
        self._clock = clock
        self._lock = threading.RLock()
        self._state = State(self.config)
        self._thread: threading.Thread | None = None
        self._next_due = 0.0  # earliest kubelet timer
        self._last_full = -math.inf
        self._stop = threading.Event()
        now = clock()
        with self._lock:
            for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
                put_namespace(self._state, ns, now)
            for spec in self.config.nodes:
                put_node(self._state, spec, now)
            self._reconcile(now)

    # ------------------------------------------------------------------ time

    def now(self) -> float:
        return self._clock()

    def tick(self, now: float | None = None) -> None:
        """Advance the controllers and the kubelet to `now` (default: the clock).

        Cheap when nothing is due: every mutation reconciles at once, so a tick only has work
        when a timer (container start, back-off, graceful termination) expires; it still makes
        a full pass every `FULL_PASS_S` for the slow conditions (progress deadlines)."""
        with self._lock:
            now = self._clock() if now is None else now
            if now < self._next_due and now - self._last_full < FULL_PASS_S:
                return
            self._reconcile(now)

    def _reconcile(self, now: float) -> None:
        controllers.reconcile(self._state, now)
        self._last_full = now
        self._next_due = min(
            (
                t
                for rt in self._state.runtime.values()
                for t in (rt.start_at, rt.terminate_at)
                if t is not None
            ),
            default=math.inf,
        )

    def start(self, interval: float = 0.1) -> None:
        """Reconcile in a background thread every `interval` seconds until `stop()`."""
        if self._thread is not None:
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(interval):
                self.tick()

        self._thread = threading.Thread(target=loop, name="lab-cluster-reconcile", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=5)
        self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def wait_for(self, predicate: Callable[[Self], bool], timeout: float = 5.0) -> bool:
        """Tick until predicate(cluster) holds; for tests and scripts."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.tick()
            if predicate(self):
                return True
            time.sleep(0.02)
        return predicate(self)

    # ------------------------------------------------------------------ lookups

    def _rtype(self, plural: str) -> ResourceType:
        rtype = RESOURCES.get(plural)
        if rtype is None:
            raise NotFoundError(f"the server could not find the requested resource ({plural})")
        return rtype

    def _key_ns(self, rtype: ResourceType, namespace: str | None) -> str:
        return (namespace or "") if rtype.namespaced else ""

    def _stored(self, plural: str, namespace: str | None, name: str) -> Obj:
        rtype = self._rtype(plural)
        obj = self._state.store.get(plural, self._key_ns(rtype, namespace), name)
        if obj is None:
            raise not_found(plural, name, rtype.group)
        return obj
