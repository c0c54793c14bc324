"""The deterministic investigation against a real Prometheus holding a shop's history."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from aiops.agent import AgentConfig, AgentDeps, SeriesLike, build_graph, investigate
from aiops.domain import FaultType
from aiops.integrations.prometheus import Prometheus
from aiops.playbooks import Observed, load_playbooks, plan_remediation
from tests.agent.conftest import incident_for, node_incident
from tests.agent.shop import FakeCluster, History, pod_name

CONFIG = AgentConfig(after_s=300)
PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"


def test_cpu_hog_names_the_service_its_fault_and_the_queries(
    prom: Prometheus, history: History
) -> None:
    cluster = FakeCluster("shop-cpu", history)
    report = investigate(
        incident_for("shop-cpu", history), AgentDeps(metrics=prom, cluster=cluster, config=CONFIG)
    )
    top = report.top
    assert top is not None
    assert (top.target, top.target_kind, top.fault) == ("payment", "Deployment", FaultType.CPU)
    assert top.namespace == "shop-cpu"
    assert top.confidence > 0.5
    assert report.generated_by == "deterministic"
    assert "payment" in report.summary
    # Each metric piece of evidence cites a PromQL query over the real exporter metric names.
    metric_sources = [e.source for e in top.evidence if e.kind == "metric"]
    assert any("container_cpu_usage_seconds_total" in s for s in metric_sources)
    assert all('namespace="shop-cpu"' in s or "node_" in s for s in metric_sources)
    assert [h.target for h in report.hypotheses].count("payment") == 1
    assert len(report.hypotheses) >= 3


def test_bad_rollout_cites_the_new_replicaset(prom: Prometheus, history: History) -> None:
    cluster = FakeCluster("shop-rollout", history)
    rs = cluster.rollout("cart", history.fault_at - 30)
    report = investigate(
        incident_for("shop-rollout", history),
        AgentDeps(metrics=prom, cluster=cluster, config=CONFIG),
    )
    top = report.top
    assert top is not None
    assert (top.target, top.fault) == ("cart", FaultType.BAD_ROLLOUT)
    rollout = [e for e in top.evidence if e.kind == "rollout"]
    assert rollout and rollout[0].source == f"ReplicaSet/shop-rollout/{rs}"
    assert "shop/cart:1.1" in rollout[0].summary
    # The error ratio that rose is cited as well.
    assert any("response_code" in e.source for e in top.evidence if e.kind == "metric")


def test_without_the_rollout_the_errors_still_point_at_cart(
    prom: Prometheus, history: History
) -> None:
    report = investigate(
        incident_for("shop-rollout", history),
        AgentDeps(metrics=prom, cluster=FakeCluster("shop-rollout", history), config=CONFIG),
    )
    assert report.top is not None
    assert report.top.target == "cart"
    assert report.top.fault is FaultType.ERRORS


def test_pods_degrading_on_one_node_blame_the_node(prom: Prometheus, history: History) -> None:
    report = investigate(
        incident_for("shop-node", history),
        AgentDeps(metrics=prom, cluster=FakeCluster("shop-node", history), config=CONFIG),
    )
    top = report.top
    assert top is not None
    assert (top.target, top.target_kind, top.fault) == ("shop-node-node-2", "Node", FaultType.NODE)
    assert any("node_cpu_seconds_total" in e.source for e in top.evidence)
    assert "shop-node-node-2" in report.summary
    # The workloads on the healthy node are not blamed above it.
    assert {h.target for h in report.hypotheses[1:3]} <= {"payment", "checkout", "shipping"}


def test_node_condition_from_the_cluster_is_cited(prom: Prometheus, history: History) -> None:
    from datetime import UTC

    from aiops.agent import NodeCondition, NodeInfo

    cluster = FakeCluster("shop-node", history)
    cluster.nodes[1] = NodeInfo(
        name="shop-node-node-2",
        conditions=[
            NodeCondition(type="Ready", status="True"),
            NodeCondition(
                type="MemoryPressure",
                status="True",
                reason="KubeletHasMemoryPressure",
                last_transition=datetime.fromtimestamp(history.fault_at, tz=UTC),
            ),
        ],
    )
    report = investigate(
        incident_for("shop-node", history), AgentDeps(metrics=prom, cluster=cluster, config=CONFIG)
    )
    top = report.top
    assert top is not None and top.target_kind == "Node"
    assert any(e.kind == "node" and e.source == "Node/shop-node-node-2" for e in top.evidence)
    assert top.confidence >= 0.7  # enough for the cordon-and-drain playbook to consider it


def test_crashing_pod_logs_are_evidence(prom: Prometheus, history: History) -> None:
    pod = pod_name("payment")
    cluster = FakeCluster(
        "shop-cpu", history, logs={pod: "INFO started\nERROR payment gateway timed out\nINFO ok\n"}
    )
    report = investigate(
        incident_for("shop-cpu", history), AgentDeps(metrics=prom, cluster=cluster, config=CONFIG)
    )
    assert report.top is not None
    logs = [e for e in report.top.evidence if e.kind == "log"]
    assert [e.summary for e in logs] == ["ERROR payment gateway timed out"]
    assert logs[0].source == f"Pod/shop-cpu/{pod}"


def test_runs_on_metrics_alone_and_says_so(prom: Prometheus, history: History) -> None:
    incident = incident_for("shop-cpu", history, entity="payment")
    report = investigate(incident, AgentDeps(metrics=prom, cluster=None, config=CONFIG))
    assert report.top is not None and report.top.target == "payment"
    assert any("no Kubernetes access" in n for n in report.notes)
    # The detector's own alarm is cited with its query.
    alarm = incident.anomalies[0]
    assert any(
        e.source == alarm.query and e.observed_at == alarm.start for e in report.top.evidence
    )


class Unreachable:
    def query_range(
        self, promql: str, start: datetime, end: datetime, step_s: float
    ) -> Sequence[SeriesLike]:
        raise ConnectionError("Prometheus at http://127.0.0.1:1 is unreachable")


def test_unreachable_prometheus_still_gives_a_report_with_the_reason(history: History) -> None:
    cluster = FakeCluster("shop-rollout", history)
    cluster.rollout("cart", history.fault_at - 30)
    report = investigate(
        incident_for("shop-rollout", history),
        AgentDeps(metrics=Unreachable(), cluster=cluster, config=CONFIG),
    )
    # The rollout alone still names a suspect; the notes say why metrics are missing.
    assert report.top is not None and report.top.target == "cart"
    assert any("unreachable" in n for n in report.notes)


def test_graph_has_the_documented_nodes(prom: Prometheus) -> None:
    graph = build_graph(AgentDeps(metrics=prom))
    nodes = set(graph.get_graph().nodes)
    assert {
        "prepare",
        "gather_metrics",
        "gather_cluster",
        "rank",
        "report",
        "llm_step",
        "llm_tools",
        "llm_finalize",
        "fallback",
    } <= nodes


def test_the_agent_never_imports_temporalio() -> None:
    code = "import sys, aiops.agent; print('temporalio' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.stdout.strip() == "False"
    sources = Path(__file__).resolve().parents[2].joinpath("aiops", "agent").glob("*.py")
    pattern = re.compile(r"^\s*(import|from)\s+temporalio", re.M)
    assert not [p.name for p in sources if pattern.search(p.read_text())]


def test_a_cpu_hog_that_heats_its_node_is_still_the_cause(
    prom: Prometheus, history: History
) -> None:
    report = investigate(
        incident_for("shop-hot", history),
        AgentDeps(metrics=prom, cluster=FakeCluster("shop-hot", history), config=CONFIG),
    )
    assert report.top is not None
    assert (report.top.target, report.top.fault) == ("payment", FaultType.CPU)
    assert all(h.target_kind == "Deployment" for h in report.hypotheses)


def test_crashloop_cites_the_crashing_pod(prom: Prometheus, history: History) -> None:
    from datetime import UTC

    from aiops.agent import ContainerState

    cluster = FakeCluster("shop-crash", history)
    crashed = datetime.fromtimestamp(history.fault_at + 120, tz=UTC)
    cluster.pods = [
        p
        if not p.name.startswith("cart-")
        else p.model_copy(
            update={
                "containers": [
                    ContainerState(
                        name="cart",
                        restart_count=5,
                        waiting_reason="CrashLoopBackOff",
                        last_terminated_reason="Error",
                        last_exit_code=1,
                        last_terminated_at=crashed,
                    )
                ]
            }
        )
        for p in cluster.pods
    ]
    report = investigate(
        incident_for("shop-crash", history), AgentDeps(metrics=prom, cluster=cluster, config=CONFIG)
    )
    top = report.top
    assert top is not None
    assert (top.target, top.fault) == ("cart", FaultType.CRASHLOOP)
    pods = [e for e in top.evidence if e.kind == "pod"]
    assert pods and pods[0].source == f"Pod/shop-crash/{pod_name('cart')}"
    assert "CrashLoopBackOff" in pods[0].summary
    assert any("kube_pod_container_status_restarts_total" in e.source for e in top.evidence)


def test_a_node_scope_incident_ranks_the_node_against_its_peers(
    prom: Prometheus, history: History
) -> None:
    report = investigate(
        node_incident("shop-node", history, "shop-node-node-2"),
        AgentDeps(metrics=prom, cluster=FakeCluster("shop-node", history), config=CONFIG),
    )
    top = report.top
    assert top is not None, report.notes
    assert (top.target, top.target_kind, top.fault) == ("shop-node-node-2", "Node", FaultType.NODE)
    # Another node moved elsewhere (a hog heats shop-hot-node-2), but this incident flagged only
    # this one and it alone departed among the flagged: a sure call, enough to cordon and drain.
    assert top.confidence == 1.0
    assert any("node_cpu_seconds_total" in e.source for e in top.evidence)
    assert any(e.kind == "alert" or "node_cpu_busy" in e.summary for e in top.evidence)
    assert report.summary.startswith("Node shop-node-node-2 is the most likely root cause")
    assert "node-scope incident about shop-node-node-2" in report.notes
    # The degraded workloads placed on it come next, in the namespace that runs there.
    assert {h.target for h in report.hypotheses[1:4]} == {"payment", "checkout", "shipping"}
    assert all(h.namespace == "shop-node" for h in report.hypotheses)
    plan = plan_remediation(report, load_playbooks(PLAYBOOKS), Observed()).plan
    assert plan.playbook_id == "cordon-and-drain-node"


def test_a_node_scope_incident_names_the_hog_that_heats_the_node(
    prom: Prometheus, history: History
) -> None:
    report = investigate(
        node_incident("shop-hot", history, "shop-hot-node-2"),
        AgentDeps(metrics=prom, cluster=FakeCluster("shop-hot", history), config=CONFIG),
    )
    targets = [(h.target, h.target_kind, h.fault) for h in report.hypotheses[:2]]
    assert targets == [
        ("payment", "Deployment", FaultType.CPU),
        ("shop-hot-node-2", "Node", FaultType.NODE),
    ]
    assert "payment is the most likely root cause (cpu fault)" in report.summary


def test_a_slow_network_is_found_on_the_edges_into_the_service(
    prom: Prometheus, history: History
) -> None:
    """payment's network delays every call into it; its own proxy (reporter="destination")
    and its own metrics see nothing, its callers wait and look slow themselves."""
    report = investigate(
        incident_for("shop-net", history, entity="checkout"),
        AgentDeps(metrics=prom, cluster=FakeCluster("shop-net", history), config=CONFIG),
    )
    top = report.top
    assert top is not None
    assert (top.target, top.fault) == ("payment", FaultType.NETWORK_LATENCY), report.summary
    edge = top.evidence[0]
    assert edge.kind == "topology"
    # Means (sum over count) are exact where quantiles of histogram buckets are not.
    assert re.match(
        r"checkout → payment: client mean 2\d ms → 2\d\d ms, server mean flat at 2\d ms$",
        edge.summary,
    )
    # It cites what the caller's proxy measured on that one edge.
    assert 'reporter="source"' in edge.source
    assert 'source_workload="checkout", destination_workload="payment"' in edge.source
    assert "checkout → payment" in report.summary
    plan = plan_remediation(report, load_playbooks(PLAYBOOKS), Observed()).plan
    assert plan.is_escalation


def test_without_the_edges_the_network_fault_is_missed(prom: Prometheus, history: History) -> None:
    blind = AgentConfig(after_s=300, edge_profile=None)
    report = investigate(
        incident_for("shop-net", history, entity="checkout"),
        AgentDeps(metrics=prom, cluster=FakeCluster("shop-net", history), config=blind),
    )
    assert report.top is not None and report.top.target != "payment"


def test_calls_only_the_callers_see_fail_point_at_the_callee_network(
    prom: Prometheus, history: History
) -> None:
    report = investigate(
        incident_for("shop-loss", history, entity="checkout"),
        AgentDeps(metrics=prom, cluster=FakeCluster("shop-loss", history), config=CONFIG),
    )
    top = report.top
    assert top is not None
    assert (top.target, top.fault) == ("shipping", FaultType.NETWORK_LOSS), report.summary
    assert any(
        e.kind == "topology"
        and e.summary.startswith("checkout → shipping: caller saw 8")
        and "the callee's side 0.1%" in e.summary  # its usual 0.1 %
        for e in top.evidence
    ), top.evidence
