"""The Kubernetes executor against the lab API over real HTTP: each action run twice has one
effect, dry runs change nothing and show a diff, failures are typed and say what to do."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiops_lab.cluster import Cluster, ClusterConfig
from aiops_lab.cluster.boutique import Service, deployment_manifest
from aiops_lab.kubeapi import LabApiServer, start_lab_api
from aiops_lab.ports import BEHAVIOUR_ANNOTATION

from aiops.domain import Step
from aiops.integrations.kubernetes import KubernetesExecutor, release_fingerprint
from aiops.integrations.kubernetes.errors import (
    ActionRefusedError,
    DrainTimeoutError,
    InvalidStepError,
    KubeUnavailableError,
    OutOfTimeError,
    TargetNotFoundError,
)
from aiops.integrations.kubernetes.releases import RESTARTED_BY, ROLLED_BACK_BY

NS = "boutique"


@dataclass
class Env:
    cluster: Cluster
    server: LabApiServer
    ex: KubernetesExecutor


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    cluster = Cluster.boutique(ClusterConfig(pod_start_s=0.05, pod_terminate_s=0.05))
    server = start_lab_api(cluster)
    ex = KubernetesExecutor.from_kubeconfig(
        str(server.write_kubeconfig(tmp_path / "kubeconfig")),
        poll_interval_s=0.05,
        drain_timeout_s=10,
    )
    try:
        yield Env(cluster, server, ex)
    finally:
        ex.api_client.close()
        server.stop()


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def replicasets(env: Env, app: str) -> list[dict]:
    items, _ = env.cluster.list("replicasets", NS, label_selector=f"app={app}")
    return items


def deployment(env: Env, name: str) -> dict:
    return env.cluster.get("deployments", NS, name)


def live_pods(env: Env, **selectors: str) -> list[dict]:
    items, _ = env.cluster.list("pods", None, **selectors)
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def test_scale_twice_has_one_effect_and_dry_run_shows_the_diff(env: Env) -> None:
    rv = env.cluster.resource_version()
    preview = env.ex.scale(NS, "frontend", 4, dry_run=True)
    assert preview.dry_run
    assert preview.changed
    assert "spec.replicas: 2 → 4" in preview.message
    assert env.cluster.resource_version() == rv
    first = env.ex.scale(NS, "frontend", 4)
    second = env.ex.scale(NS, "frontend", 4)
    assert (first.ok, first.changed, second.changed) == (True, True, False)
    assert "already at 4" in second.message
    assert deployment(env, "frontend")["spec"]["replicas"] == 4
    assert first.action == "k8s.scale"
    assert first.target == "Deployment/boutique/frontend"


def test_restart_is_keyed_by_incident(env: Env) -> None:
    old_pods = {p["metadata"]["name"] for p in live_pods(env, label_selector="app=cartservice")}
    preview = env.ex.rollout_restart(NS, "cartservice", "inc-7", dry_run=True)
    assert f"[{RESTARTED_BY}]: (none) → inc-7" in preview.message
    assert len(replicasets(env, "cartservice")) == 1
    first = env.ex.rollout_restart(NS, "cartservice", "inc-7")
    second = env.ex.rollout_restart(NS, "cartservice", "inc-7")
    assert (first.changed, second.changed) == (True, False)
    assert "already restarted for incident inc-7" in second.message
    assert len(replicasets(env, "cartservice")) == 2  # one new revision, not two
    wait_until(
        lambda: (
            not old_pods
            & {p["metadata"]["name"] for p in live_pods(env, label_selector="app=cartservice")}
        )
    )
    # Another incident restarts again.
    assert env.ex.rollout_restart(NS, "cartservice", "inc-8").changed
    assert len(replicasets(env, "cartservice")) == 3


def test_undo_restores_the_previous_revision_once_per_incident(env: Env) -> None:
    good_image = deployment(env, "adservice")["spec"]["template"]["spec"]["containers"][0]["image"]
    env.cluster.rollout(NS, "adservice", "adservice:bad", {BEHAVIOUR_ANNOTATION: "errors:0.5"})
    preview = env.ex.rollout_undo(NS, "adservice", "inc-1", dry_run=True)
    assert "adservice:bad → " + good_image in preview.message
    assert f"[{BEHAVIOUR_ANNOTATION}]: errors:0.5 → (none)" in preview.message
    assert deployment(env, "adservice")["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "adservice:bad"
    )
    first = env.ex.rollout_undo(NS, "adservice", "inc-1")
    second = env.ex.rollout_undo(NS, "adservice", "inc-1")
    assert (first.changed, second.changed) == (True, False)
    d = deployment(env, "adservice")
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == good_image
    assert BEHAVIOUR_ANNOTATION not in (d["spec"]["template"]["metadata"].get("annotations") or {})
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert d["metadata"]["annotations"][ROLLED_BACK_BY] == "inc-1"
    wait_until(
        lambda: (
            {
                p.revision
                for p in env.cluster.snapshot().pods
                if p.deployment == "adservice" and not p.deleting
            }
            == {3}
        )
    )
    # kubectl's undo would toggle back to the bad release; a later incident is refused instead.
    with pytest.raises(ActionRefusedError, match=r"\(revision 2\) is the one aiops rolled back"):
        env.ex.rollout_undo(NS, "adservice", "inc-2")
    assert deployment(env, "adservice")["spec"]["template"]["spec"]["containers"][0]["image"] == (
        good_image
    )
    # Naming the revision is a person's explicit choice, and still works.
    assert env.ex.rollout_undo(NS, "adservice", "inc-2", to_revision=2).changed


def test_undo_skips_restarts_and_never_returns_to_a_release_it_removed(env: Env) -> None:
    good_image = deployment(env, "adservice")["spec"]["template"]["spec"]["containers"][0]["image"]
    env.cluster.rollout(NS, "adservice", "adservice:bad", {BEHAVIOUR_ANNOTATION: "errors:0.5"})
    assert env.ex.rollout_restart(NS, "adservice", "inc-wrong").changed  # revision 3: bad again
    undone = env.ex.rollout_undo(NS, "adservice", "inc-1")
    assert "to the template of revision 1" in undone.message
    d = deployment(env, "adservice")
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == good_image
    # A later incident restarts the good release, then another asks for an undo: the only
    # earlier release is the bad one aiops removed, so it is refused.
    assert env.ex.rollout_restart(NS, "adservice", "inc-2").changed
    with pytest.raises(ActionRefusedError, match="aiops rolled back from for inc-1"):
        env.ex.rollout_undo(NS, "adservice", "inc-3")
    # A new release afterwards is fair game for the next rollback.
    env.cluster.rollout(NS, "adservice", "adservice:v3", {})
    assert "to the template of revision" in env.ex.rollout_undo(NS, "adservice", "inc-4").message
    assert deployment(env, "adservice")["spec"]["template"]["spec"]["containers"][0]["image"] == (
        good_image
    )


def test_undo_of_restarts_only_is_refused(env: Env) -> None:
    assert env.ex.rollout_restart(NS, "emailservice", "inc-1").changed
    with pytest.raises(ActionRefusedError, match="differ only by restarts"):
        env.ex.rollout_undo(NS, "emailservice", "inc-2")


def test_undo_without_history_is_refused(env: Env) -> None:
    with pytest.raises(ActionRefusedError, match="no previous revision"):
        env.ex.rollout_undo(NS, "emailservice", "inc-1")
    with pytest.raises(ActionRefusedError, match="revision 7 not found"):
        env.ex.rollout_undo(NS, "emailservice", "inc-1", to_revision=7)


def test_delete_pod_twice_deletes_once_and_the_pod_is_replaced(env: Env) -> None:
    (victim,) = [p["metadata"]["name"] for p in live_pods(env, label_selector="app=emailservice")]
    preview = env.ex.delete_pod(NS, victim, dry_run=True)
    assert "→ deleted" in preview.message
    assert "creates a replacement" in preview.message
    assert victim in {p["metadata"]["name"] for p in live_pods(env)}
    assert env.ex.delete_pod(NS, victim).changed
    assert not env.ex.delete_pod(NS, victim).changed
    wait_until(
        lambda: (
            len(live_pods(env, label_selector="app=emailservice")) == 1
            and victim not in {p["metadata"]["name"] for p in live_pods(env)}
        )
    )
    assert not env.ex.delete_pod(NS, victim).changed  # gone now: still nothing to do


def test_cordon_twice_and_uncordon(env: Env) -> None:
    preview = env.ex.cordon("node-c", dry_run=True)
    assert "spec.unschedulable: false → true" in preview.message
    assert not env.cluster.get("nodes", None, "node-c")["spec"].get("unschedulable")
    assert env.ex.cordon("node-c").changed
    assert not env.ex.cordon("node-c").changed
    assert env.cluster.get("nodes", None, "node-c")["spec"]["unschedulable"] is True
    assert env.ex.uncordon("node-c").changed
    assert not env.cluster.get("nodes", None, "node-c")["spec"].get("unschedulable")


def test_drain_evicts_workloads_skips_daemonsets_and_is_idempotent(env: Env) -> None:
    env.cluster.add_static_pod("kube-system", "etcd-node-b", "node-b", mirror=True)
    on_b = {p["metadata"]["name"] for p in live_pods(env, field_selector="spec.nodeName=node-b")}
    preview = env.ex.drain("node-b", dry_run=True)
    assert "spec.unschedulable: false → true" in preview.message
    assert "stays: kube-system/kube-proxy-node-b (DaemonSet)" in preview.message
    assert "stays: kube-system/etcd-node-b (mirror pod)" in preview.message
    assert {
        p["metadata"]["name"] for p in live_pods(env, field_selector="spec.nodeName=node-b")
    } == on_b
    first = env.ex.drain("node-b")
    assert first.changed
    left = {p["metadata"]["name"] for p in live_pods(env, field_selector="spec.nodeName=node-b")}
    assert left == {"kube-proxy-node-b", "etcd-node-b"}
    second = env.ex.drain("node-b")
    assert not second.changed
    assert "already drained" in second.message
    wait_until(
        lambda: all(
            d.available_replicas == d.spec_replicas for d in env.cluster.snapshot().deployments
        )
    )


def add_deployment(env: Env, namespace: str, name: str, **labels: str) -> None:
    """A three-replica Deployment outside the shop (the lab spreads one pod per node)."""
    manifest = deployment_manifest(
        Service(name, 80, "10m", "20m", "16Mi", "32Mi", replicas=3), namespace
    )
    manifest["spec"]["template"]["metadata"]["labels"].update(labels)
    env.cluster.add_namespace(namespace)
    env.cluster.add_object("deployments", manifest)


def test_drain_leaves_protected_namespaces_and_aiops_itself(env: Env) -> None:
    add_deployment(env, "kube-system", "coredns")
    add_deployment(env, "monitoring", "prometheus")
    add_deployment(env, "ops", "aiops-worker", **{"app.kubernetes.io/name": "aiops"})
    add_deployment(env, "platform", "aiops-mcp", **{"app.kubernetes.io/part-of": "aiops"})

    def on_b() -> dict[str, str]:
        pods = live_pods(env, field_selector="spec.nodeName=node-b")
        return {p["metadata"]["name"]: p["metadata"]["namespace"] for p in pods}

    wait_until(lambda: {"kube-system", "monitoring", "ops", "platform"} <= set(on_b().values()))
    stay = {name: ns for name, ns in on_b().items() if ns != NS}
    # The policy of the incident protects monitoring too (its snapshot is passed in).
    ex = env.ex.bound(protected_namespaces=["kube-system", "monitoring", "istio-*"])
    preview = ex.drain("node-b", dry_run=True)
    for name, ns in stay.items():
        assert f"stays: {ns}/{name} (" in preview.message, preview.message
    coredns = next(n for n, ns in stay.items() if n.startswith("coredns"))
    worker = next(n for n, ns in stay.items() if n.startswith("aiops-worker"))
    mcp = next(n for n, ns in stay.items() if n.startswith("aiops-mcp"))
    assert f"kube-system/{coredns} (namespace kube-system is protected by the policy)" in (
        preview.message
    )
    assert f"ops/{worker} (aiops' own pod: a drain never evicts aiops itself)" in preview.message
    assert f"platform/{mcp} (aiops' own pod" in preview.message
    moving = [n for n, ns in on_b().items() if ns == NS]
    assert moving and all(f"pod {NS}/{n}: on node-b → evicted" in preview.message for n in moving)

    assert ex.drain("node-b").changed
    assert on_b() == stay, "only the shop's pods left the node"
    # Without a policy snapshot the built-in protected namespaces still hold; monitoring does not.
    env.ex.uncordon("node-b")
    plain = env.ex.drain("node-b", dry_run=True)
    assert f"stays: kube-system/{coredns} (namespace kube-system" in plain.message
    assert f"stays: ops/{worker} (aiops' own pod" in plain.message
    assert "pod monitoring/prometheus-" in plain.message


def test_drain_waits_for_the_budget_then_gives_up_with_the_reason(env: Env) -> None:
    env.ex.scale(NS, "frontend", 1)
    wait_until(lambda: len(live_pods(env, label_selector="app=frontend")) == 1)
    (pod,) = live_pods(env, label_selector="app=frontend")
    node = pod["spec"]["nodeName"]
    preview = env.ex.drain(node, dry_run=True)
    assert "blocked" in preview.message
    assert "frontend-pdb" in preview.message
    with pytest.raises(DrainTimeoutError) as err:
        env.ex.drain(node, timeout_s=0.5)
    assert f"boutique/{pod['metadata']['name']}" in err.value.remaining
    assert "frontend-pdb" in str(err.value)
    assert "stays cordoned" in str(err.value)
    assert env.cluster.get("nodes", None, node)["spec"]["unschedulable"] is True
    assert pod["metadata"]["name"] in {p["metadata"]["name"] for p in live_pods(env)}


def test_drain_moves_two_replicas_on_one_node_one_at_a_time(env: Env) -> None:
    env.ex.cordon("node-b")
    env.ex.cordon("node-c")
    env.ex.scale(NS, "frontend", 4)  # the new replicas can only land on node-a
    wait_until(lambda: deployment(env, "frontend")["status"].get("availableReplicas") == 4)
    env.ex.uncordon("node-b")
    env.ex.uncordon("node-c")
    # Three of four must stay healthy: the second eviction waits for the first replacement.
    env.cluster.patch(
        "poddisruptionbudgets",
        NS,
        "frontend-pdb",
        "application/merge-patch+json",
        {"spec": {"minAvailable": 3}},
    )
    on_a = [
        p
        for p in live_pods(env, label_selector="app=frontend")
        if p["spec"]["nodeName"] == "node-a"
    ]
    assert len(on_a) >= 2
    progress: list[str] = []
    env.ex.on_wait = progress.append
    result = env.ex.drain("node-a")
    assert any("wait for a disruption budget" in line for line in progress)
    assert result.changed
    assert all(
        f"pod boutique/{p['metadata']['name']}: on node-a → evicted" in result.message for p in on_a
    )
    assert any(e["reason"] == "Evicted" for e in env.cluster.list("events", NS)[0])
    frontend = live_pods(env, label_selector="app=frontend")
    assert "node-a" not in {p["spec"]["nodeName"] for p in frontend}


def test_drain_refuses_pods_no_controller_owns_unless_forced(env: Env) -> None:
    env.cluster.add_static_pod(NS, "debug-shell", "node-c")
    with pytest.raises(ActionRefusedError, match="debug-shell"):
        env.ex.drain("node-c")
    assert env.ex.drain("node-c", force=True).changed
    assert "debug-shell" not in {p["metadata"]["name"] for p in live_pods(env)}


def test_steps_dispatch_and_preview(env: Env) -> None:
    steps = [
        Step(action="k8s.scale", args={"namespace": NS, "name": "checkoutservice", "replicas": 3}),
        Step(action="k8s.rollout_restart", args={"namespace": NS, "name": "checkoutservice"}),
        Step(action="k8s.cordon", args={"node": "node-a"}),
    ]
    diffs = env.ex.preview(steps, incident_id="inc-9")
    assert "spec.replicas: 2 → 3" in diffs[0]
    assert "inc-9" in diffs[1]
    assert "spec.unschedulable" in diffs[2]
    assert deployment(env, "checkoutservice")["spec"]["replicas"] == 2
    results = [env.ex.execute(s, incident_id="inc-9") for s in steps]
    assert all(r.changed and r.ok and not r.dry_run for r in results)
    again = [env.ex.execute(s, incident_id="inc-9") for s in steps]
    assert not any(r.changed for r in again)


def test_bad_input_and_missing_targets_raise_actionable_errors(env: Env) -> None:
    with pytest.raises(InvalidStepError, match="replicas"):
        env.ex.scale(NS, "frontend", -1)
    with pytest.raises(InvalidStepError, match="unknown action"):
        env.ex.execute(Step(action="k8s.exec", args={}), incident_id="i")
    with pytest.raises(InvalidStepError, match="'timeout_s' must be a float"):
        env.ex.execute(
            Step(action="k8s.drain", args={"node": "node-a", "timeout_s": "soon"}), incident_id="i"
        )
    with pytest.raises(InvalidStepError, match="'namespace'"):
        env.ex.execute(Step(action="k8s.scale", args={"name": "x", "replicas": 1}), incident_id="i")
    with pytest.raises(TargetNotFoundError, match="check the name and the namespace"):
        env.ex.scale(NS, "no-such-service", 2)
    with pytest.raises(TargetNotFoundError):
        env.ex.rollout_restart("nowhere", "frontend", "inc-1")
    with pytest.raises(TargetNotFoundError):
        env.ex.cordon("node-z")


def test_unreachable_api_is_a_retryable_error(tmp_path: Path) -> None:
    from aiops_lab.kubeapi import write_kubeconfig

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    kubeconfig = write_kubeconfig(tmp_path / "kc", f"http://127.0.0.1:{port}")
    ex = KubernetesExecutor.from_kubeconfig(str(kubeconfig))
    with pytest.raises(KubeUnavailableError) as err:
        ex.scale(NS, "frontend", 2)
    assert err.value.retryable
    assert "cannot reach the Kubernetes API" in str(err.value)


def test_a_silent_api_server_times_out_every_call_within_the_activity_deadline(
    tmp_path: Path,
) -> None:
    from aiops_lab.kubeapi import write_kubeconfig

    with socket.socket() as hole:  # accepts connections (the kernel's backlog), never answers
        hole.bind(("127.0.0.1", 0))
        hole.listen(64)
        url = f"http://127.0.0.1:{hole.getsockname()[1]}"
        kubeconfig = write_kubeconfig(tmp_path / "kc", url)
        ex = KubernetesExecutor.from_kubeconfig(str(kubeconfig), request_timeout_s=0.5)
        started = time.monotonic()
        with pytest.raises(KubeUnavailableError, match="cannot reach the Kubernetes API"):
            ex.rollout_restart(NS, "frontend", "inc-1")
        # One read timed out; nothing that may have reached the server was sent again.
        assert time.monotonic() - started < 1.5
        # In an activity the deadline cuts the request timeout, then refuses further calls.
        bound = ex.bound(deadline=time.monotonic() + 0.8)
        bound.request_timeout_s = 30.0
        started = time.monotonic()
        with pytest.raises(KubeUnavailableError):
            bound.drain("node-a")
        assert time.monotonic() - started < 1.5
        with pytest.raises(OutOfTimeError, match="ran out of time") as err:
            bound.scale(NS, "frontend", 2)
        assert err.value.retryable


def test_restart_clears_what_the_simulation_sees_as_a_leak(env: Env) -> None:
    before = [p for p in env.cluster.snapshot().pods if p.deployment == "cartservice"]
    for pod in before:
        env.cluster.report_container_exit(NS, pod.name, "OOMKilled", 137)
    leaking = [p for p in env.cluster.snapshot().pods if p.deployment == "cartservice"]
    assert all(p.restarts == 1 and p.last_terminated_reason == "OOMKilled" for p in leaking)
    env.ex.rollout_restart(NS, "cartservice", "inc-leak")

    def fresh() -> bool:
        pods = [
            p
            for p in env.cluster.snapshot().pods
            if p.deployment == "cartservice" and not p.deleting
        ]
        return len(pods) == 2 and all(
            p.ready
            and p.restarts == 0
            and p.last_terminated_reason is None
            and p.name not in {b.name for b in before}
            for p in pods
        )

    wait_until(fresh)
    started = min(
        p.started_at
        for p in env.cluster.snapshot().pods
        if p.deployment == "cartservice" and not p.deleting
    )
    assert started > max(p.started_at for p in before)


def test_paused_rollouts_are_not_restarted_or_rolled_back(env: Env) -> None:
    env.cluster.patch(
        "deployments", NS, "frontend", "application/merge-patch+json", {"spec": {"paused": True}}
    )
    with pytest.raises(ActionRefusedError, match="kubectl rollout resume deployment/frontend"):
        env.ex.rollout_restart(NS, "frontend", "inc-3")
    with pytest.raises(ActionRefusedError, match="paused"):
        env.ex.rollout_undo(NS, "frontend", "inc-3")
    assert len(replicasets(env, "frontend")) == 1


def test_api_refusals_map_to_typed_errors() -> None:
    from kubernetes.client.exceptions import ApiException

    from aiops.integrations.kubernetes.errors import (
        ConflictError,
        KubeApiError,
        PermissionDeniedError,
    )
    from aiops.integrations.kubernetes.errors import api_error as _api_error

    def refused(status: int, message: str) -> ApiException:
        exc = ApiException(status=status, reason="x")
        exc.body = json.dumps({"kind": "Status", "message": message, "code": status})
        return exc

    denied = _api_error(
        "k8s.scale",
        "Deployment/b/f",
        refused(403, 'deployments.apps "f" is forbidden: User "aiops" cannot patch'),
    )
    assert isinstance(denied, PermissionDeniedError)
    assert "cannot patch" in str(denied)
    assert "RBAC" in str(denied)
    assert isinstance(_api_error("a", "t", refused(409, "modified")), ConflictError)
    server = _api_error("a", "t", refused(503, "etcd unavailable"))
    assert isinstance(server, KubeApiError)
    assert server.retryable
    invalid = _api_error("a", "t", refused(422, "spec.replicas: Invalid value"))
    assert isinstance(invalid, KubeApiError)
    assert not invalid.retryable


def test_wait_for_rollout_reports_like_kubectl_rollout_status(env: Env) -> None:
    env.ex.rollout_restart(NS, "currencyservice", "inc-4")
    done = env.ex.wait_for_rollout(NS, "currencyservice", timeout_s=10)
    assert done.ok
    assert done.message == 'deployment "currencyservice" successfully rolled out'
    # A revision whose pods never become ready does not complete.
    env.cluster.rollout(NS, "shippingservice", "shipping:broken", {})
    for pod in env.cluster.snapshot().pods:
        if pod.deployment == "shippingservice" and pod.revision == 2:
            env.cluster.set_pod_ready(NS, pod.name, False)
    stuck = env.ex.wait_for_rollout(NS, "shippingservice", timeout_s=0.5)
    assert not stuck.ok
    assert "not done after" in stuck.message


def test_reader_sees_a_restart_as_the_same_release_and_a_rollout_as_a_new_one(env: Env) -> None:
    from aiops.integrations.kubernetes.readers import KubernetesReader

    reader = KubernetesReader(env.ex.api_client)

    def releases() -> list[str | None]:
        sets = sorted(
            (r for r in reader.list_replicasets(NS) if r.deployment == "adservice"),
            key=lambda r: r.revision or 0,
        )
        return [r.release for r in sets]

    assert env.ex.rollout_restart(NS, "adservice", "inc-1").changed
    first, restarted = releases()
    assert first is not None and first == restarted
    assert release_fingerprint(deployment(env, "adservice")["spec"]["template"]) == first
    env.cluster.rollout(NS, "adservice", "adservice:v2", {})
    assert releases()[-1] not in (None, first)
