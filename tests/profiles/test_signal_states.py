"""Every signal, verification and precondition query against a real Prometheus, in each state a
series can be in: present, never existed (a workload that never failed has no 5xx series), gone
stale, and the crash loop of issue 18 (a crashing pod's own proxy counts nothing; only its
callers see the calls it refused). Each metric profile's exporter writes the same story in a
namespace of its own (tests/profiles/conftest.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from aiops.config import ProfileSettings
from aiops.domain import Evidence, FaultType, Hypothesis, RcaReport
from aiops.integrations.discovery import ProfileDiscovery
from aiops.playbooks import Observed, load_playbooks, plan_remediation
from aiops.profiles import Assembly
from tests.profiles.conftest import States
from tests.profiles.exporters import REQUEST_EXPORTERS

PROFILES = sorted(REQUEST_EXPORTERS)
# Profiles that count a call no pod answered (the callers' side, or the ingress in front)
CALLERS_VIEW = {"istio", "linkerd", "otel-spanmetrics", "ingress-nginx"}
PLAYBOOKS = load_playbooks(Path(__file__).parents[2] / "playbooks")


def live(states: States, profile: str) -> Assembly:
    """What discovery turns on when the cluster runs this profile's exporter (and the base)."""
    settings = ProfileSettings(enabled=[profile])
    return ProfileDiscovery(settings, states.prometheus()).current()


def values(states: States, promql: str, at: float) -> dict[str, float]:
    when = datetime.fromtimestamp(at, UTC)
    out = {}
    for s in states.prometheus().query(promql, at=when):
        pod = s.labels.get("pod", "").removesuffix("-5d9f8b6c7d-x2x7k")
        out[s.labels.get("workload") or s.labels.get("deployment") or pod] = s.values[-1]
    return out


@pytest.mark.parametrize("profile", PROFILES)
def test_request_signals_in_every_state(states: States, profile: str) -> None:
    signals = live(states, profile).by_name()
    assert profile in signals["error_ratio"].profiles

    def signal(name: str, at: float) -> dict[str, float]:
        return values(states, signals[name].render({"namespace": profile}, "1m"), at)

    errors = signal("error_ratio", states.end)
    assert errors["steady"] == pytest.approx(0.02, abs=0.002)
    assert errors["failing"] == pytest.approx(0.5, abs=0.01)
    assert errors["clean"] == 0.0  # its 5xx series never existed: zero, not absent
    assert errors["crashing"] == 0.0  # recovered; its callers' refusals went stale
    assert "gone" not in errors
    assert errors["frontend-web"] == pytest.approx(0.02, abs=0.002)
    rate = signal("request_rate", states.end)
    assert rate["steady"] == pytest.approx(10.0, rel=0.05)
    assert rate["clean"] == pytest.approx(10.0, rel=0.05)
    assert "gone" not in rate
    p99 = signal("latency_p99", states.end)
    assert 0.025 < p99["steady"] <= 0.05  # seconds, in every profile
    assert "gone" not in p99

    crash = signal("error_ratio", states.during_crash)
    if profile in CALLERS_VIEW:
        assert crash["crashing"] == 1.0
    else:  # the servers' own metrics: a crashing server counts nothing
        assert "crashing" not in crash


@pytest.mark.parametrize("profile", PROFILES)
def test_base_signals_in_every_state(states: States, profile: str) -> None:
    signals = live(states, profile).by_name()

    def signal(name: str, at: float, window: str = "1m") -> dict[str, float]:
        return values(states, signals[name].render({"namespace": profile}, window), at)

    available = signal("replicas_available_ratio", states.end)
    assert available["steady"] == 1.0 and "gone" not in available
    assert signal("replicas_available_ratio", states.during_crash)["crashing"] == 0.0
    memory = signal("memory_vs_limit", states.end)
    assert memory["steady"] == 0.5 and "gone" not in memory
    assert signal("restarts", states.during_crash, "3m")["crashing"] > 0
    assert signal("restarts", states.end, "3m")["crashing"] == 0


def report(target: str, namespace: str, fault: FaultType) -> RcaReport:
    now = datetime.now(UTC)
    top = Hypothesis(
        target=target,
        namespace=namespace,
        fault=fault,
        confidence=0.9,
        evidence=[Evidence(kind="metric", summary="x", source="q")],
    )
    return RcaReport(
        incident_id="inc-1", hypotheses=[top], summary="", started_at=now, finished_at=now
    )


def verified(states: States, profile: str, target: str, fault: FaultType, at: float) -> bool:
    planned = plan_remediation(
        report(target, profile, fault), PLAYBOOKS, Observed(replicas=2), live(states, profile)
    )
    assert planned.plan.verification is not None, planned.plan.rationale
    when = datetime.fromtimestamp(at, UTC)
    return bool(states.prometheus().query(planned.plan.verification.query, at=when))


@pytest.mark.parametrize("profile", PROFILES)
def test_rollback_verification_in_every_state(states: States, profile: str) -> None:
    rollback = FaultType.BAD_ROLLOUT
    assert verified(states, profile, "steady", rollback, states.end)  # 2 % errors: under 5 %
    assert verified(states, profile, "clean", rollback, states.end)
    assert not verified(states, profile, "failing", rollback, states.end)
    assert not verified(states, profile, "gone", rollback, states.end)
    # issue 18: the crash-looping release, rolled back, verifies once it serves again
    assert not verified(states, profile, "crashing", rollback, states.during_crash)
    assert verified(states, profile, "crashing", rollback, states.end)


def test_the_old_istio_verification_never_held_after_the_crash_loop(states: States) -> None:
    """The query rollback-deployment shipped before: its numerator is the destination's 5xx,
    which a workload that never answered 5xx itself does not have."""
    sel = (
        'reporter="destination",destination_workload_namespace="istio",'
        'destination_workload="crashing"'
    )
    old = (
        f'sum(rate(istio_requests_total{{{sel},response_code=~"5.."}}[2m])) '
        f"/ sum(rate(istio_requests_total{{{sel}}}[2m])) < 0.05"
    )
    assert values(states, old, states.end) == {}
    assert verified(states, "istio", "crashing", FaultType.BAD_ROLLOUT, states.end)


@pytest.mark.parametrize("profile", PROFILES)
def test_restart_precondition_in_every_state(states: States, profile: str) -> None:
    def passes(target: str, at: float) -> bool:
        planned = plan_remediation(
            report(target, profile, FaultType.MEMORY), PLAYBOOKS, None, live(states, profile)
        )
        (check,) = [c for c in planned.preconditions if c.promql]
        assert check.promql is not None
        when = datetime.fromtimestamp(at, UTC)
        return bool(states.prometheus().query(check.promql, at=when))

    assert passes("steady", states.end)
    assert not passes("gone", states.end)
    assert not passes("crashing", states.during_crash)
