"""Read tool over the metric profiles: what aiops can watch in this cluster."""

from __future__ import annotations

from fastmcp import FastMCP
from pydantic import BaseModel, Field

from aiops.mcp.backends import Backends
from aiops.mcp.common import BACKENDS, READ_ONLY, TAGS, prom_message
from aiops.profiles.report import summary


class LiveSignal(BaseModel):
    profiles: list[str] = Field(description="the profiles whose metrics feed it")
    detect: bool = Field(description="watched by the detection pass")
    unit: str


class Signals(BaseModel):
    discovered: bool = Field(description="from what Prometheus has (else: every part, unchecked)")
    profiles_found: list[str]
    profiles_known: list[str]
    signals: dict[str, LiveSignal]
    cannot_run: dict[str, list[str]] = Field(description="signal -> what each profile wants")
    checked_at: str | None = None
    problem: str | None = None


def list_signals(b: Backends = BACKENDS) -> Signals:
    """What aiops can watch in this cluster: the metric profiles (Istio, Linkerd,
    OpenTelemetry, ingress-nginx, and the base of cAdvisor, kube-state-metrics and
    node_exporter) whose metric families Prometheus has, the signals they feed, and the
    signals that cannot run for want of which metric."""
    discovery = b.discovery()
    answer = Signals.model_validate(summary(discovery.current()))
    if discovery.checked_at is not None:
        answer.checked_at = discovery.checked_at.isoformat()
    if discovery.last_error:
        answer.problem = prom_message(discovery.last_error, "discovery")
    return answer


def register(mcp: FastMCP) -> None:
    mcp.tool(list_signals, annotations=READ_ONLY, tags=TAGS)
