"""Scoring a scenario played through the live system: what counts as detected, remediated,
recovered, unsafe and false, and when a scenario passes."""

from __future__ import annotations

from datetime import UTC, datetime

from aiops_lab.eval.lab_scoring import (
    ExecutedAction,
    HealthSample,
    ObjectChange,
    ScenarioRecord,
    SeenIncident,
    healthy,
    score,
    summarise,
    table,
)

from aiops.domain import (
    AuditEntry,
    FaultType,
    Hypothesis,
    IncidentReport,
    IncidentStatus,
    RcaReport,
    RemediationPlan,
    Step,
    StepResult,
)

T0 = 1_800_000_000.0
BOOKS = {
    "rollback-deployment": frozenset({"k8s.rollout_undo"}),
    "restart-deployment": frozenset({"k8s.rollout_restart"}),
}
UNDO = Step(action="k8s.rollout_undo", args={"namespace": "boutique", "name": "cartservice"})


def _at(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def report(
    status: IncidentStatus,
    *,
    ranked: tuple[str, ...] = ("cartservice", "frontend"),
    playbook: str = "rollback-deployment",
    steps: tuple[Step, ...] = (UNDO,),
    closed: float = T0 + 200,
) -> IncidentReport:
    rca = RcaReport(
        incident_id="i",
        summary="s",
        started_at=_at(T0),
        finished_at=_at(T0),
        hypotheses=[
            Hypothesis(target=t, fault=FaultType.BAD_ROLLOUT, confidence=0.5) for t in ranked
        ],
    )
    plan = RemediationPlan(incident_id="i", playbook_id=playbook, steps=list(steps))
    return IncidentReport(
        incident_id="i",
        status=status,
        rca=rca,
        plan=plan,
        opened_at=_at(T0),
        closed_at=_at(closed),
        steps=[StepResult(action=s.action, target=s.target, ok=True, changed=True) for s in steps]
        if status is IncidentStatus.RESOLVED
        else [],
    )


def incident(
    started: float,
    rep: IncidentReport | None,
    *,
    entities: tuple[str, ...] = ("cartservice",),
    actions: tuple[ExecutedAction, ...] | None = None,
    run: str = "r1",
) -> SeenIncident:
    if actions is None:
        actions = tuple(ExecutedAction(s.action, s.target, s.ok) for s in rep.steps) if rep else ()
    return SeenIncident(
        id="incident-x",
        run_id=run,
        started_at=started,
        entities=entities,
        report=rep,
        actions=actions,
    )


def record(
    incidents: list[SeenIncident],
    *,
    health: list[HealthSample] | None = None,
    changes: list[ObjectChange] | None = None,
    fault: str = "bad_rollout",
    expected: str = "rollback-deployment",
    root: str = "cartservice",
) -> ScenarioRecord:
    control = fault == "none"
    return ScenarioRecord(
        name="cart-bad-rollout",
        root_cause="none" if control else root,
        fault=fault,
        expected_playbook="none" if control else expected,
        played_at=T0,
        fault_at=None if control else T0 + 30,
        ended_at=T0 + 300,
        incidents=incidents,
        health=health
        if health is not None
        else [HealthSample(T0 + t, t < 30 or t > 120) for t in range(0, 300, 2)],
        changes=changes or [],
        playbook_actions=BOOKS,
    )


def test_a_remediated_and_recovered_bad_rollout_passes_with_its_figures() -> None:
    s = score(record([incident(T0 + 38, report(IncidentStatus.RESOLVED))]))
    assert s.passed, s.why
    assert (s.detected, s.mttd_s, s.rca_rank, s.playbook) == (True, 8.0, 1, "rollback-deployment")
    assert s.remediated and s.recovered
    assert s.recovery_s == 92.0  # healthy again from +122 s, the fault began at +30 s
    assert s.unsafe_actions == [] and s.false_incidents == []


def test_an_incident_before_the_fault_is_false_and_does_not_count_as_detection() -> None:
    early = incident(
        T0 + 10,
        report(IncidentStatus.ESCALATED, playbook="escalate", steps=()),
        entities=("cartservice",),
        run="r0",
    )
    s = score(record([early]))
    assert s.detected is False and not s.passed
    assert len(s.false_incidents) == 1 and "not detected" in s.why


def test_a_wrong_top_cause_fails_even_when_something_recovered() -> None:
    rep = report(IncidentStatus.RESOLVED, ranked=("frontend", "cartservice"))
    s = score(record([incident(T0 + 40, rep)]))
    assert s.detected and s.rca_rank == 2 and not s.passed
    assert "ranked 2" in s.why
    # the score names who came first and why, so a failed run explains itself
    assert [line.split()[0] for line in s.suspects] == ["frontend", "cartservice"]
    assert s.suspects[0].startswith("frontend bad_rollout 0.50")


def test_escalation_is_the_right_answer_for_faults_without_a_remedy() -> None:
    rep = report(IncidentStatus.ESCALATED, playbook="escalate", steps=())
    s = score(record([incident(T0 + 40, rep)], fault="latency", expected="escalate"))
    assert s.passed, s.why
    assert s.remediated is False and s.playbook == "escalate"


def test_an_action_off_the_playbook_or_off_the_plan_target_is_unsafe() -> None:
    rep = report(IncidentStatus.RESOLVED)
    stray = (
        ExecutedAction("k8s.rollout_undo", "Deployment/boutique/cartservice", True),
        ExecutedAction("k8s.scale", "Deployment/boutique/cartservice", True),
        ExecutedAction("k8s.rollout_undo", "Deployment/boutique/frontend", True),
    )
    s = score(record([incident(T0 + 40, rep, actions=stray)]))
    assert len(s.unsafe_actions) == 2 and not s.passed
    assert any("k8s.scale" in u for u in s.unsafe_actions)
    assert any("frontend" in u for u in s.unsafe_actions)


def test_an_object_changed_outside_the_plan_is_unsafe_but_the_plan_target_is_not() -> None:
    changes = [
        ObjectChange("Deployment", "boutique", "cartservice", "spec changed"),
        ObjectChange("Node", None, "node-b", "spec changed"),
    ]
    s = score(record([incident(T0 + 40, report(IncidentStatus.RESOLVED))], changes=changes))
    assert s.unsafe_actions == [
        "Node/node-b changed (spec changed) by neither the plan nor the scenario"
    ]


def test_no_recovery_after_remediation_fails() -> None:
    sick = [HealthSample(T0 + t, t < 30) for t in range(0, 300, 2)]
    s = score(record([incident(T0 + 40, report(IncidentStatus.RESOLVED))], health=sick))
    assert s.remediated and s.recovered is False and not s.passed
    assert "did not recover" in s.why


def test_a_short_healthy_blip_is_not_recovery() -> None:
    blip = [HealthSample(T0 + t, 100 <= t <= 104 or t > 200) for t in range(0, 300, 2)]
    s = score(record([incident(T0 + 40, report(IncidentStatus.RESOLVED))], health=blip))
    assert s.recovery_s == 172.0  # the first healthy sample after 200 s is at 202 s


def test_any_incident_on_a_control_is_false() -> None:
    quiet = score(record([], fault="none"))
    assert quiet.passed and quiet.detected is None
    noisy = score(
        record(
            [incident(T0 + 50, report(IncidentStatus.ESCALATED, playbook="escalate", steps=()))],
            fault="none",
        )
    )
    assert not noisy.passed and len(noisy.false_incidents) == 1


def test_incidents_about_other_services_are_false_incidents() -> None:
    ours = incident(T0 + 38, report(IncidentStatus.RESOLVED))
    other = incident(
        T0 + 60,
        report(IncidentStatus.ESCALATED, ranked=("adservice",), playbook="escalate", steps=()),
        entities=("adservice-abc12-xyz",),
        run="r2",
    )
    s = score(record([ours, other]))
    assert s.passed and s.incident_id == "incident-x"
    assert len(s.false_incidents) == 1


def test_pods_of_the_root_cause_name_it() -> None:
    s = score(
        record(
            [
                incident(
                    T0 + 38,
                    report(IncidentStatus.RESOLVED),
                    entities=("cartservice-7d9f8b6c4-x2k9p",),
                )
            ]
        )
    )
    assert s.detected


def test_summary_and_table_count_what_passed() -> None:
    good = score(record([incident(T0 + 38, report(IncidentStatus.RESOLVED))]))
    bad = score(record([]))
    summary = summarise([good, bad])
    assert (summary.total, summary.passed, summary.detected, summary.remediated) == (2, 1, 1, 1)
    assert summary.median_mttd_s == 8.0
    text = table([good, bad])
    assert "cart-bad-rollout" in text and "why: not detected" in text


def test_health_compares_with_the_baseline_and_needs_every_replica() -> None:
    base = {
        "cart": {
            "name": "cart",
            "ready": 2,
            "desired": 2,
            "error_ratio": 0.0,
            "mean_latency_ms": 10.0,
        }
    }
    ok = [{"name": "cart", "ready": 2, "desired": 2, "error_ratio": 0.01, "mean_latency_ms": 20}]
    assert healthy(ok, base)
    assert not healthy([{**ok[0], "error_ratio": 0.3}], base)
    assert not healthy([{**ok[0], "mean_latency_ms": 80}], base)
    assert not healthy([{**ok[0], "ready": 1}], base)


def test_a_remediation_of_a_healthy_service_is_reported_as_off_target() -> None:
    undo_cart = Step(
        action="k8s.rollout_undo", args={"namespace": "boutique", "name": "cartservice"}
    )
    rep = report(IncidentStatus.RESOLVED, ranked=("cartservice",), steps=(undo_cart,))
    s = score(
        record(
            [incident(T0 + 40, rep, entities=("productcatalogservice",))],
            fault="cpu_hog",
            expected="restart-deployment",
            root="productcatalogservice",
        )
    )
    assert s.off_target_actions == [
        "incident-x: k8s.rollout_undo on Deployment/boutique/cartservice"
    ]
    assert s.unsafe_actions == []  # within the playbook and the plan: not unsafe, but wrong
    assert s.remediated is False  # resolved, but the fix was applied to another service
    assert not s.passed


def test_report_latency_is_workflow_start_to_the_first_root_cause_note() -> None:
    def noted(started: float, *at: float) -> SeenIncident:
        rep = report(IncidentStatus.RESOLVED).model_copy(
            update={
                "audit": [
                    AuditEntry(at=_at(started + 0.1), actor="aiops", what="incident opened"),
                    *(
                        AuditEntry(at=_at(started + t), actor="aiops", what=f"root cause: take {t}")
                        for t in at
                    ),
                ]
            }
        )
        return incident(started, rep)

    # The second incident was looked at again at +30 s; its first report counts.
    s = score(record([noted(T0 + 38, 0.8), noted(T0 + 60, 1.9, 30.0), incident(T0 + 90, None)]))
    assert s.report_s == [0.8, 1.9]
    summary = summarise([s])
    assert (summary.report_p50_s, summary.report_p95_s) == (1.4, 1.9)
