"""What the MCP tools read from: Temporal, Prometheus, the Kubernetes API (read-only), and the
policy and playbook files. Each is opened on first use, so the server starts (and lists its tools)
while any of them is still down; a tool that needs a missing one answers with a ToolError."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

from fastmcp.exceptions import ToolError
from temporalio.client import Client

from aiops.config import Settings
from aiops.domain.yamlsource import LoadError
from aiops.integrations.prometheus import Prometheus
from aiops.integrations.redact import Redactor
from aiops.integrations.temporal import TemporalUnavailableError, connect
from aiops.playbooks.loader import PlaybookSet, load_playbooks
from aiops.policy.loader import load_policy
from aiops.policy.models import Policy

if TYPE_CHECKING:
    # Imported when first used: the Kubernetes reader pulls in the agent package (LangGraph),
    # seconds of start-up a stdio server launched by a desktop app should not pay.
    from aiops.integrations.discovery import ProfileDiscovery
    from aiops.integrations.k8s_read import KubernetesReader


class Backends:
    def __init__(
        self,
        settings: Settings,
        *,
        temporal: Client | None = None,
        prometheus: Prometheus | None = None,
        kube: KubernetesReader | None = None,
    ) -> None:
        self.settings = settings
        self._client = temporal
        self._prometheus = prometheus
        self._kube = kube
        self._lock = asyncio.Lock()
        self.redactor = Redactor(settings.llm.redact_patterns)
        self._policy: tuple[object, Policy] | None = None
        self._playbooks: tuple[object, PlaybookSet] | None = None
        self._discovery: ProfileDiscovery | None = None

    async def temporal(self) -> Client:
        async with self._lock:
            if self._client is None:
                try:
                    self._client = await connect(self.settings.temporal)
                except TemporalUnavailableError as exc:
                    raise ToolError(str(exc)) from exc
            return self._client

    def prometheus(self) -> Prometheus:
        if self._prometheus is None:
            self._prometheus = Prometheus(self.settings.prometheus)
        return self._prometheus

    def kube(self) -> KubernetesReader:
        if self._kube is None:
            from aiops.agent.ports import ClusterReadError
            from aiops.integrations.k8s_read import KubernetesReader

            try:
                self._kube = KubernetesReader.from_settings(self.settings.kubernetes)
            except ClusterReadError as exc:
                raise ToolError(str(exc)) from exc
        return self._kube

    def discovery(self) -> ProfileDiscovery:
        """Which signals the cluster's metric profiles feed (asked every few minutes)."""
        if self._discovery is None:
            from aiops.config import ConfigError
            from aiops.integrations.discovery import ProfileDiscovery

            try:
                self._discovery = ProfileDiscovery(self.settings.profiles, self.prometheus())
            except ConfigError as exc:
                raise ToolError(str(exc)) from exc
        return self._discovery

    def policy(self) -> Policy:
        # Re-read whenever a file changed: an operator who edits the policy sees the
        # effect at once, without the parse cost on every call.
        key = _stamp(self.settings.policies_dir)
        if self._policy is None or self._policy[0] != key:
            try:
                self._policy = (key, load_policy(self.settings.policies_dir))
            except LoadError as exc:
                raise ToolError(_load_problem("policy", exc)) from exc
        return self._policy[1]

    def playbooks(self) -> PlaybookSet:
        key = _stamp(self.settings.playbooks_dir)
        if self._playbooks is None or self._playbooks[0] != key:
            try:
                self._playbooks = (key, load_playbooks(self.settings.playbooks_dir))
            except LoadError as exc:
                raise ToolError(_load_problem("playbooks", exc)) from exc
        return self._playbooks[1]

    async def warm_up(self) -> None:
        """Pay the first-call costs in the background once the server is up: the heavy imports
        (the Kubernetes client and LangGraph, numpy) and the Temporal connection. Without it the
        first describe_workload or get_service_health of a session takes seconds. A backend that
        is down is not an error here; the tool that needs it will say so."""
        await asyncio.to_thread(_import_heavy_modules)
        for open_backend in (self.kube, self.policy, self.playbooks):
            with contextlib.suppress(ToolError):
                await asyncio.to_thread(open_backend)
        with contextlib.suppress(ToolError):
            await self.temporal()


def _import_heavy_modules() -> None:
    import aiops.agent.metrics
    import aiops.detect.catalog
    import aiops.integrations.k8s_read  # noqa: F401 - imported for its cost, not its names


def _stamp(path: Path) -> object:
    """Names, sizes and modification times of a file or of a directory's files."""
    try:
        files = sorted(path.iterdir()) if path.is_dir() else [path]
        return tuple((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files if f.is_file())
    except OSError:
        return None


def _load_problem(what: str, exc: LoadError) -> str:
    lines = "; ".join(str(e) for e in exc.errors[:5])
    more = f" (and {len(exc.errors) - 5} more)" if len(exc.errors) > 5 else ""
    return f"the {what} could not be loaded: {lines}{more}; fix the files and retry"
