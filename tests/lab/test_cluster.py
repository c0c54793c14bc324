"""The lab cluster behaves like a cluster: controllers, kubelet, scheduler, disruption budgets.

Time is a fake clock here, so every step (container start, back-off, termination) is exact.
"""

from __future__ import annotations

import threading

import pytest
from aiops_lab.cluster import Cluster, ClusterConfig
from aiops_lab.cluster.boutique import NAMES
from aiops_lab.cluster.errors import (
    ConflictError,
    InvalidError,
    NotFoundError,
    TooManyRequestsError,
)
from aiops_lab.cluster.patch import JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH
from aiops_lab.ports import BEHAVIOUR_ANNOTATION, ClusterPort, DeploymentState

NS = "boutique"


class FakeClock:
    def __init__(self, start: float = 1_790_000_000.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cluster(clock: FakeClock) -> Cluster:
    c = Cluster.boutique(
        ClusterConfig(pod_start_s=1.0, pod_terminate_s=1.0, backoff_base_s=10.0), clock=clock
    )
    advance(c, clock, 1.0)
    return c


def advance(cluster: Cluster, clock: FakeClock, seconds: float, step: float = 0.5) -> None:
    end = clock.t + seconds
    while clock.t < end:
        clock.t = min(end, clock.t + step)
        cluster.tick()


def pods_of(cluster: Cluster, app: str, *, live: bool = True) -> list[dict]:
    pods, _ = cluster.list("pods", NS, label_selector=f"app={app}")
    return [p for p in pods if not (live and p["metadata"].get("deletionTimestamp"))]


def deployment(cluster: Cluster, name: str) -> DeploymentState:
    return next(d for d in cluster.snapshot().deployments if d.name == name)


def events(cluster: Cluster, reason: str) -> list[dict]:
    items, _ = cluster.list("events", NS, field_selector=f"reason={reason}")
    return items


def test_boutique_seed_runs_every_service_ready_on_three_nodes(cluster: Cluster) -> None:
    port: ClusterPort = cluster
    snap = port.snapshot()
    assert [n.name for n in snap.nodes] == ["node-a", "node-b", "node-c"]
    assert sorted(d.name for d in snap.deployments) == sorted(NAMES)
    for d in snap.deployments:
        assert d.available_replicas == d.spec_replicas >= 1
        assert d.revision == 1
        assert d.labels["app"] == d.name
        assert d.cpu_limit_cores > 0
        assert d.memory_limit_bytes > 0
    assert all(p.ready and p.phase == "Running" and p.node for p in snap.pods)
    assert len(snap.pods) == sum(d.spec_replicas for d in snap.deployments)
    # Replicas of one deployment are spread over nodes.
    frontend_nodes = {p.node for p in snap.pods if p.deployment == "frontend"}
    assert len(frontend_nodes) == 2
    pdbs, _ = cluster.list("poddisruptionbudgets", NS)
    assert {p["metadata"]["name"] for p in pdbs} >= {"frontend-pdb", "cartservice-pdb"}
    assert all(p["status"]["disruptionsAllowed"] == 1 for p in pdbs)


def test_deployment_status_and_replicaset_bookkeeping(cluster: Cluster) -> None:
    d = cluster.get("deployments", NS, "cartservice")
    assert d["status"]["observedGeneration"] == d["metadata"]["generation"]
    assert d["status"]["replicas"] == d["status"]["availableReplicas"] == 2
    assert d["status"]["updatedReplicas"] == d["status"]["readyReplicas"] == 2
    conds = {c["type"]: c for c in d["status"]["conditions"]}
    assert conds["Available"]["status"] == "True"
    assert conds["Progressing"]["reason"] == "NewReplicaSetAvailable"
    rss, _ = cluster.list("replicasets", NS, label_selector="app=cartservice")
    assert len(rss) == 1
    rs = rss[0]
    h = rs["metadata"]["labels"]["pod-template-hash"]
    assert rs["metadata"]["name"] == f"cartservice-{h}"
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    assert rs["metadata"]["ownerReferences"][0]["uid"] == d["metadata"]["uid"]
    for pod in pods_of(cluster, "cartservice"):
        assert pod["metadata"]["labels"]["pod-template-hash"] == h
        cs = pod["status"]["containerStatuses"][0]
        assert cs["ready"] is True
        assert cs["restartCount"] == 0
        assert "running" in cs["state"]


def test_scale_changes_pod_count_and_records_scaling_event(
    cluster: Cluster, clock: FakeClock
) -> None:
    cluster.patch_scale(NS, "frontend", MERGE_PATCH, {"spec": {"replicas": 4}})
    assert len(pods_of(cluster, "frontend")) == 4
    advance(cluster, clock, 1.5)
    assert cluster.get("deployments", NS, "frontend")["status"]["availableReplicas"] == 4
    assert any("from 2 to 4" in e["message"] for e in events(cluster, "ScalingReplicaSet"))
    cluster.patch_scale(NS, "frontend", MERGE_PATCH, {"spec": {"replicas": 1}})
    assert len(pods_of(cluster, "frontend")) == 1
    assert len(pods_of(cluster, "frontend", live=False)) == 4  # three still terminating
    advance(cluster, clock, 1.5)
    assert len(pods_of(cluster, "frontend", live=False)) == 1
    assert events(cluster, "Killing")


def test_rollout_replaces_pods_without_dropping_below_max_unavailable(
    cluster: Cluster, clock: FakeClock
) -> None:
    before = {p["metadata"]["name"] for p in pods_of(cluster, "frontend")}
    revision = cluster.rollout(NS, "frontend", "frontend:v2", {BEHAVIOUR_ANNOTATION: "errors:0.3"})
    assert revision == 2
    lowest = 2
    for _ in range(20):
        advance(cluster, clock, 0.5)
        lowest = min(lowest, deployment(cluster, "frontend").available_replicas)
    snap = cluster.snapshot()
    frontend = [p for p in snap.pods if p.deployment == "frontend"]
    assert {p.name for p in frontend}.isdisjoint(before)
    assert all(p.revision == 2 and p.ready for p in frontend)
    assert all(p.template_annotations[BEHAVIOUR_ANNOTATION] == "errors:0.3" for p in frontend)
    # maxUnavailable 25% of 2 rounds down to 0: availability never drops.
    assert lowest == 2
    rss, _ = cluster.list("replicasets", NS, label_selector="app=frontend")
    assert sorted(rs["spec"]["replicas"] for rs in rss) == [0, 2]


def test_rollback_by_template_copy_reuses_the_old_replicaset_as_newest_revision(
    cluster: Cluster, clock: FakeClock
) -> None:
    cluster.rollout(NS, "adservice", "adservice:bad", {BEHAVIOUR_ANNOTATION: "crash:bad-config"})
    advance(cluster, clock, 3)
    rss, _ = cluster.list("replicasets", NS, label_selector="app=adservice")
    old = next(
        rs
        for rs in rss
        if rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    )
    template = old["spec"]["template"]
    del template["metadata"]["labels"]["pod-template-hash"]
    # What `kubectl rollout undo` sends: a JSON patch replacing the template.
    cluster.patch(
        "deployments",
        NS,
        "adservice",
        JSON_PATCH,
        [{"op": "replace", "path": "/spec/template", "value": template}],
    )
    advance(cluster, clock, 3)
    rss, _ = cluster.list("replicasets", NS, label_selector="app=adservice")
    assert len(rss) == 2  # the old ReplicaSet came back, no third one
    revived = next(rs for rs in rss if rs["metadata"]["name"] == old["metadata"]["name"])
    assert revived["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert revived["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
    assert revived["spec"]["replicas"] == 1
    d = deployment(cluster, "adservice")
    assert (d.name, d.revision, d.template_annotations) == ("adservice", 3, {})


def test_container_exit_counts_restarts_with_crashloop_backoff(
    cluster: Cluster, clock: FakeClock
) -> None:
    pod = pods_of(cluster, "cartservice")[0]["metadata"]["name"]
    cluster.report_container_exit(NS, pod, "OOMKilled", 137)
    advance(cluster, clock, 0.5)  # first restart is immediate, then the container runs again
    cluster.report_container_exit(NS, pod, "OOMKilled", 137)
    status = cluster.get("pods", NS, pod)["status"]
    cs = status["containerStatuses"][0]
    assert cs["restartCount"] == 2
    assert cs["lastState"]["terminated"]["reason"] == "OOMKilled"
    assert cs["lastState"]["terminated"]["exitCode"] == 137
    assert cs["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert cs["ready"] is False
    assert events(cluster, "BackOff")
    advance(cluster, clock, 9.0)
    assert "waiting" in cluster.get("pods", NS, pod)["status"]["containerStatuses"][0]["state"]
    advance(cluster, clock, 1.5)
    cs = cluster.get("pods", NS, pod)["status"]["containerStatuses"][0]
    assert cs["ready"] is True
    assert "running" in cs["state"]
    snap_pod = next(p for p in cluster.snapshot().pods if p.name == pod)
    assert (snap_pod.restarts, snap_pod.last_terminated_reason) == (2, "OOMKilled")
    assert "out of memory" in cluster.pod_log(NS, pod, previous=True)


def test_unready_new_revision_keeps_the_old_pods_serving(
    cluster: Cluster, clock: FakeClock
) -> None:
    cluster.rollout(NS, "checkoutservice", "checkout:bad", {BEHAVIOUR_ANNOTATION: "errors:1"})
    for _ in range(10):
        for p in cluster.snapshot().pods:
            if p.deployment == "checkoutservice" and p.revision == 2:
                cluster.set_pod_ready(NS, p.name, False)
        advance(cluster, clock, 0.5)
    pods = [p for p in cluster.snapshot().pods if p.deployment == "checkoutservice"]
    old = [p for p in pods if p.revision == 1 and not p.deleting]
    assert len(old) >= 1
    assert all(p.ready for p in old)
    d = cluster.get("deployments", NS, "checkoutservice")
    assert d["status"]["updatedReplicas"] >= 1
    assert d["status"]["availableReplicas"] >= 1


def test_cordoned_and_not_ready_nodes_get_no_new_pods(cluster: Cluster, clock: FakeClock) -> None:
    cluster.patch("nodes", None, "node-a", STRATEGIC_MERGE_PATCH, {"spec": {"unschedulable": True}})
    cluster.set_node_ready("node-b", False)
    node = cluster.get("nodes", None, "node-a")
    assert node["spec"]["taints"][0]["key"] == "node.kubernetes.io/unschedulable"
    assert all(not p.ready for p in cluster.snapshot().pods if p.node == "node-b")
    existing = {p["metadata"]["name"] for p in pods_of(cluster, "emailservice")}
    cluster.patch_scale(NS, "emailservice", MERGE_PATCH, {"spec": {"replicas": 4}})
    advance(cluster, clock, 2)
    new = [p for p in pods_of(cluster, "emailservice") if p["metadata"]["name"] not in existing]
    assert len(new) == 3
    assert {p["spec"]["nodeName"] for p in new} == {"node-c"}
    node_events, _ = cluster.list("events", "default", field_selector="involvedObject.name=node-a")
    assert [e["reason"] for e in node_events] == ["NodeNotSchedulable"]


def test_pods_wait_pending_when_no_node_is_schedulable(cluster: Cluster, clock: FakeClock) -> None:
    for node in ("node-a", "node-b", "node-c"):
        cluster.patch("nodes", None, node, MERGE_PATCH, {"spec": {"unschedulable": True}})
    cluster.patch_scale(NS, "adservice", MERGE_PATCH, {"spec": {"replicas": 2}})
    pending = [p for p in pods_of(cluster, "adservice") if not p["spec"].get("nodeName")]
    assert len(pending) == 1
    assert pending[0]["status"]["phase"] == "Pending"
    failed = events(cluster, "FailedScheduling")
    assert "3 node(s) were unschedulable" in failed[0]["message"]
    cluster.patch("nodes", None, "node-b", MERGE_PATCH, {"spec": {"unschedulable": None}})
    advance(cluster, clock, 1.5)
    assert cluster.get("deployments", NS, "adservice")["status"]["availableReplicas"] == 2


def test_deleted_pod_is_replaced(cluster: Cluster, clock: FakeClock) -> None:
    victim = pods_of(cluster, "paymentservice")[0]["metadata"]["name"]
    deleted = cluster.delete("pods", NS, victim)
    assert deleted["metadata"]["deletionTimestamp"]
    advance(cluster, clock, 2)
    names = [p["metadata"]["name"] for p in pods_of(cluster, "paymentservice", live=False)]
    assert len(names) == 1
    assert victim not in names
    with pytest.raises(NotFoundError):
        cluster.get("pods", NS, victim)


def test_eviction_honours_the_disruption_budget(cluster: Cluster, clock: FakeClock) -> None:
    first, second = (p["metadata"]["name"] for p in pods_of(cluster, "frontend"))
    cluster.evict(NS, first)
    with pytest.raises(TooManyRequestsError) as err:
        cluster.evict(NS, second)
    assert "frontend-pdb" in err.value.status()["details"]["causes"][0]["message"]
    advance(cluster, clock, 2)  # the replacement is ready: the budget allows one more
    cluster.evict(NS, second)
    assert events(cluster, "Evicted")


def test_dry_run_changes_nothing(cluster: Cluster) -> None:
    rv = cluster.resource_version()
    preview = cluster.patch(
        "deployments", NS, "frontend", MERGE_PATCH, {"spec": {"replicas": 5}}, dry_run=True
    )
    assert preview["spec"]["replicas"] == 5
    cluster.delete("pods", NS, pods_of(cluster, "frontend")[0]["metadata"]["name"], dry_run=True)
    cluster.evict(NS, pods_of(cluster, "frontend")[0]["metadata"]["name"], dry_run=True)
    cluster.patch_scale(NS, "cartservice", MERGE_PATCH, {"spec": {"replicas": 0}}, dry_run=True)
    assert cluster.resource_version() == rv
    assert cluster.get("deployments", NS, "frontend")["spec"]["replicas"] == 2


def test_writes_are_validated_and_optimistically_locked(cluster: Cluster) -> None:
    d = cluster.get("deployments", NS, "frontend")
    cluster.patch("deployments", NS, "frontend", MERGE_PATCH, {"metadata": {"labels": {"x": "y"}}})
    with pytest.raises(ConflictError):
        cluster.replace("deployments", NS, "frontend", d)
    with pytest.raises(InvalidError, match=r"spec\.replicas"):
        cluster.patch("deployments", NS, "frontend", MERGE_PATCH, {"spec": {"replicas": -1}})
    with pytest.raises(InvalidError, match="selector"):
        cluster.patch(
            "deployments",
            NS,
            "frontend",
            MERGE_PATCH,
            {"spec": {"template": {"metadata": {"labels": {"app": "other"}}}}},
        )


def test_strategic_merge_patch_merges_containers_by_name(cluster: Cluster) -> None:
    patched = cluster.patch(
        "deployments",
        NS,
        "frontend",
        STRATEGIC_MERGE_PATCH,
        {"spec": {"template": {"spec": {"containers": [{"name": "server", "image": "fe:v9"}]}}}},
    )
    (container,) = patched["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "fe:v9"
    assert container["resources"]["limits"]["memory"] == "128Mi"  # kept, not replaced


def test_revision_history_is_pruned_to_the_limit(cluster: Cluster, clock: FakeClock) -> None:
    cluster.patch(
        "deployments", NS, "emailservice", MERGE_PATCH, {"spec": {"revisionHistoryLimit": 2}}
    )
    for i in range(5):
        cluster.rollout(NS, "emailservice", f"email:v{i}", {})
        advance(cluster, clock, 3)
    rss, _ = cluster.list("replicasets", NS, label_selector="app=emailservice")
    revisions = sorted(
        int(r["metadata"]["annotations"]["deployment.kubernetes.io/revision"]) for r in rss
    )
    assert revisions == [4, 5, 6]


def test_concurrent_mutations_with_the_background_loop_stay_consistent() -> None:
    cluster = Cluster.boutique(ClusterConfig(pod_start_s=0.01, pod_terminate_s=0.01))
    cluster.start(interval=0.01)
    errors: list[BaseException] = []

    def worker(app: str) -> None:
        try:
            for n in (3, 1, 2):
                cluster.patch_scale(NS, app, MERGE_PATCH, {"spec": {"replicas": n}})
                cluster.snapshot()
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [
        threading.Thread(target=worker, args=(a,))
        for a in ("frontend", "adservice", "emailservice")
    ]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert cluster.wait_for(
            lambda c: all(
                d.available_replicas == d.spec_replicas for d in c.snapshot().deployments
            ),
            timeout=5,
        )
    finally:
        cluster.stop()
    assert {d.name: d.spec_replicas for d in cluster.snapshot().deployments}["frontend"] == 2


def test_logs_tell_a_bad_config_from_a_healthy_start(cluster: Cluster, clock: FakeClock) -> None:
    cluster.rollout(
        NS,
        "emailservice",
        "email:v2",
        {BEHAVIOUR_ANNOTATION: "errors:0.1,crash:bad-config,crash_after:2"},
    )
    advance(cluster, clock, 3)
    (pod,) = [p for p in pods_of(cluster, "emailservice")]
    text = cluster.pod_log(NS, pod["metadata"]["name"])
    assert 'msg="invalid configuration" detail=bad-config' in text
    assert "listening" not in text
    healthy = pods_of(cluster, "adservice")[0]["metadata"]["name"]
    assert "listening" in cluster.pod_log(NS, healthy, tail_lines=1)


def test_external_readiness_waits_for_the_probe_verdict(clock: FakeClock) -> None:
    cluster = Cluster.boutique(
        ClusterConfig(pod_start_s=1.0, pod_terminate_s=1.0, external_readiness=True), clock=clock
    )
    advance(cluster, clock, 2)
    pods = [p for p in cluster.snapshot().pods if p.deployment == "emailservice"]
    assert [(p.phase, p.ready) for p in pods] == [("Running", False)]
    cluster.set_pod_ready(NS, pods[0].name, True)
    assert deployment(cluster, "emailservice").available_replicas == 1
    # A rollout whose new pod never passes its probe leaves the old pod serving.
    cluster.rollout(NS, "emailservice", "email:v2", {BEHAVIOUR_ANNOTATION: "crash:bad-config"})
    advance(cluster, clock, 10)
    live = [p for p in cluster.snapshot().pods if p.deployment == "emailservice" and not p.deleting]
    assert sorted((p.revision, p.ready) for p in live) == [(1, True), (2, False)]
    # A restarted container needs the verdict again.
    cluster.report_container_exit(NS, pods[0].name, "OOMKilled", 137)
    advance(cluster, clock, 1)
    again = next(p for p in cluster.snapshot().pods if p.name == pods[0].name)
    assert again.restarts == 1
    assert not again.ready
