"""The lab Kubernetes API, end to end through the official `kubernetes` client (unpatched):
every response below was validated by the client's pydantic models."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiops_lab.cluster import Cluster, ClusterConfig
from aiops_lab.kubeapi import LabApiServer, start_lab_api
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

NS = "boutique"


@dataclass
class Lab:
    cluster: Cluster
    server: LabApiServer
    core: client.CoreV1Api
    apps: client.AppsV1Api
    policy: client.PolicyV1Api
    api_client: client.ApiClient


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    cluster = Cluster.boutique(ClusterConfig(pod_start_s=0.05, pod_terminate_s=0.05))
    server = start_lab_api(cluster)
    kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
    api_client = config.new_client_from_config(config_file=str(kubeconfig))
    try:
        yield Lab(
            cluster,
            server,
            client.CoreV1Api(api_client),
            client.AppsV1Api(api_client),
            client.PolicyV1Api(api_client),
            api_client,
        )
    finally:
        api_client.close()
        server.stop()


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def settled(lab: Lab, name: str) -> bool:
    d = lab.apps.read_namespaced_deployment(name, NS)
    s = d.status
    return bool(
        s.observed_generation == d.metadata.generation
        and s.updated_replicas == s.replicas == s.available_replicas == d.spec.replicas
    )


def pod_names(lab: Lab, selector: str) -> set[str]:
    pods = lab.core.list_namespaced_pod(NS, label_selector=selector).items
    return {p.metadata.name for p in pods if p.metadata.deletion_timestamp is None}


def error_of(exc: pytest.ExceptionInfo[ApiException]) -> dict:
    return json.loads(exc.value.body)


def all_settled(lab: Lab) -> bool:
    return all(settled(lab, d.metadata.name) for d in lab.apps.list_namespaced_deployment(NS).items)


def test_every_kind_lists_and_validates_against_the_client_models(lab: Lab) -> None:
    wait_until(lambda: all_settled(lab))
    assert {n.metadata.name for n in lab.core.list_node().items} == {"node-a", "node-b", "node-c"}
    assert NS in {n.metadata.name for n in lab.core.list_namespace().items}
    deployments = lab.apps.list_namespaced_deployment(NS).items
    assert len(deployments) == 11
    frontend = next(d for d in deployments if d.metadata.name == "frontend")
    assert frontend.spec.template.spec.containers[0].resources.limits["cpu"] == "200m"
    assert frontend.metadata.annotations["deployment.kubernetes.io/revision"] == "1"
    assert len(lab.apps.list_namespaced_replica_set(NS).items) == 11
    pods = lab.core.list_namespaced_pod(NS).items
    status = pods[0].status
    assert status.phase == "Running"
    assert status.container_statuses[0].ready is True
    assert status.container_statuses[0].restart_count == 0
    assert status.container_statuses[0].state.running.started_at is not None
    assert {c.type for c in status.conditions} >= {"Ready", "PodScheduled"}
    reasons = {e.reason for e in lab.core.list_namespaced_event(NS).items}
    assert {"Scheduled", "ScalingReplicaSet", "SuccessfulCreate", "Started"} <= reasons
    assert lab.core.list_event_for_all_namespaces().items
    pdbs = lab.policy.list_namespaced_pod_disruption_budget(NS).items
    assert {p.metadata.name for p in pdbs} >= {"frontend-pdb"}
    assert lab.apps.list_deployment_for_all_namespaces().items
    assert lab.core.list_pod_for_all_namespaces().items
    assert lab.policy.list_pod_disruption_budget_for_all_namespaces().items


def test_discovery_answers_the_clients_questions(lab: Lab) -> None:
    assert client.VersionApi(lab.api_client).get_code().major == "1"
    assert client.CoreApi(lab.api_client).get_api_versions().versions == ["v1"]
    groups = {g.name for g in client.ApisApi(lab.api_client).get_api_versions().groups}
    assert groups >= {"apps", "policy"}
    apps = {r.name for r in lab.apps.get_api_resources().resources}
    assert {"deployments", "deployments/scale", "replicasets"} <= apps
    core = {r.name for r in lab.core.get_api_resources().resources}
    assert {"pods", "pods/eviction", "pods/log", "nodes", "events"} <= core


def test_label_and_field_selectors_are_honoured(lab: Lab) -> None:
    assert len(pod_names(lab, "app=frontend")) == 2
    both = lab.core.list_namespaced_pod(NS, label_selector="app in (frontend, cartservice)")
    assert {p.metadata.labels["app"] for p in both.items} == {"frontend", "cartservice"}
    not_frontend = lab.core.list_namespaced_pod(NS, label_selector="app!=frontend,app")
    assert "frontend" not in {p.metadata.labels["app"] for p in not_frontend.items}
    on_a = lab.core.list_pod_for_all_namespaces(field_selector="spec.nodeName=node-a").items
    assert on_a
    assert {p.spec.node_name for p in on_a} == {"node-a"}
    assert "kube-proxy-node-a" in {p.metadata.name for p in on_a}
    one = lab.apps.list_namespaced_deployment(NS, field_selector="metadata.name=redis-cart")
    assert [d.metadata.name for d in one.items] == ["redis-cart"]
    with pytest.raises(ApiException) as err:
        lab.core.list_namespaced_pod(NS, field_selector="spec.bogus=1")
    assert err.value.status == 400
    assert "field label not supported" in error_of(err)["message"]


def test_list_pages_with_limit_and_continue(lab: Lab) -> None:
    first = lab.core.list_namespaced_pod(NS, limit=5)
    assert len(first.items) == 5
    assert first.metadata.remaining_item_count > 0
    rest = lab.core.list_namespaced_pod(NS, limit=100, _continue=first.metadata._continue)
    names = [p.metadata.name for p in first.items + rest.items]
    assert len(names) == len(set(names)) == len(lab.core.list_namespaced_pod(NS).items)


def test_scale_subresource_changes_the_pod_count(lab: Lab) -> None:
    scale = lab.apps.read_namespaced_deployment_scale("frontend", NS)
    assert (scale.spec.replicas, scale.status.selector) == (2, "app=frontend")
    lab.apps.patch_namespaced_deployment_scale("frontend", NS, {"spec": {"replicas": 4}})
    wait_until(lambda: settled(lab, "frontend"))
    assert len(pod_names(lab, "app=frontend")) == 4
    body = client.V1Scale(
        metadata=client.V1ObjectMeta(name="frontend", namespace=NS),
        spec=client.V1ScaleSpec(replicas=3),
    )
    assert lab.apps.replace_namespaced_deployment_scale("frontend", NS, body).spec.replicas == 3
    wait_until(lambda: len(pod_names(lab, "app=frontend")) == 3)


def test_rollout_restart_replaces_every_pod(lab: Lab) -> None:
    before = pod_names(lab, "app=cartservice")
    patch = {
        "spec": {
            "template": {
                "metadata": {
                    "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-24T12:00:00Z"}
                }
            }
        }
    }
    lab.apps.patch_namespaced_deployment("cartservice", NS, patch)
    wait_until(
        lambda: settled(lab, "cartservice") and not (pod_names(lab, "app=cartservice") & before)
    )
    d = lab.apps.read_namespaced_deployment("cartservice", NS)
    assert d.metadata.annotations["deployment.kubernetes.io/revision"] == "2"
    assert (
        len(lab.apps.list_namespaced_replica_set(NS, label_selector="app=cartservice").items) == 2
    )


def test_rollback_like_kubectl_undo_restores_the_previous_template(lab: Lab) -> None:
    lab.apps.patch_namespaced_deployment(
        "adservice",
        NS,
        {
            "spec": {
                "template": {
                    "spec": {"containers": [{"name": "server", "image": "adservice:broken"}]}
                }
            }
        },
    )
    wait_until(lambda: settled(lab, "adservice"))
    rss = lab.apps.list_namespaced_replica_set(NS, label_selector="app=adservice").items
    previous = next(
        r for r in rss if r.metadata.annotations["deployment.kubernetes.io/revision"] == "1"
    )
    template = lab.api_client.sanitize_for_serialization(previous.spec.template)
    del template["metadata"]["labels"]["pod-template-hash"]
    # kubectl rollout undo: a JSON patch that replaces the template.
    lab.apps.patch_namespaced_deployment(
        "adservice", NS, [{"op": "replace", "path": "/spec/template", "value": template}]
    )
    wait_until(lambda: settled(lab, "adservice"))
    d = lab.apps.read_namespaced_deployment("adservice", NS)
    assert d.spec.template.spec.containers[0].image.endswith("adservice:v0.10.2")
    assert d.metadata.annotations["deployment.kubernetes.io/revision"] == "3"
    pods = lab.core.list_namespaced_pod(NS, label_selector="app=adservice").items
    assert {p.spec.containers[0].image for p in pods if not p.metadata.deletion_timestamp} == {
        d.spec.template.spec.containers[0].image
    }


def test_cordon_keeps_new_pods_off_the_node(lab: Lab) -> None:
    node = lab.core.patch_node("node-a", {"spec": {"unschedulable": True}})
    assert node.spec.unschedulable is True
    assert node.spec.taints[0].key == "node.kubernetes.io/unschedulable"
    before = pod_names(lab, "app=emailservice")
    lab.apps.patch_namespaced_deployment_scale("emailservice", NS, {"spec": {"replicas": 5}})
    wait_until(lambda: settled(lab, "emailservice"))
    new = [
        p
        for p in lab.core.list_namespaced_pod(NS, label_selector="app=emailservice").items
        if p.metadata.name not in before
    ]
    assert len(new) == 4
    assert "node-a" not in {p.spec.node_name for p in new}


def test_drain_by_eviction_respects_the_disruption_budget(lab: Lab) -> None:
    lab.apps.patch_namespaced_deployment_scale("frontend", NS, {"spec": {"replicas": 1}})
    wait_until(lambda: settled(lab, "frontend") and len(pod_names(lab, "app=frontend")) == 1)
    (pod,) = pod_names(lab, "app=frontend")
    eviction = client.V1Eviction(metadata=client.V1ObjectMeta(name=pod, namespace=NS))
    with pytest.raises(ApiException) as err:
        lab.core.create_namespaced_pod_eviction(pod, NS, eviction)
    assert err.value.status == 429
    body = error_of(err)
    assert body["reason"] == "TooManyRequests"
    assert "disruption budget" in body["message"]
    assert pod in pod_names(lab, "app=frontend")
    # With a second replica ready the budget allows the eviction.
    lab.apps.patch_namespaced_deployment_scale("frontend", NS, {"spec": {"replicas": 2}})
    wait_until(lambda: settled(lab, "frontend"))
    lab.core.create_namespaced_pod_eviction(pod, NS, eviction)
    wait_until(lambda: pod not in pod_names(lab, "app=frontend") and settled(lab, "frontend"))


def test_deleted_pod_is_replaced(lab: Lab) -> None:
    (victim,) = pod_names(lab, "app=shippingservice")
    deleted = lab.core.delete_namespaced_pod(victim, NS)
    assert deleted.metadata.deletion_timestamp is not None
    wait_until(
        lambda: (
            len(pod_names(lab, "app=shippingservice") - {victim}) == 1
            and settled(lab, "shippingservice")
        )
    )
    with pytest.raises(ApiException) as err:
        wait_until(lambda: bool(lab.core.read_namespaced_pod(victim, NS)) and False, timeout=1)
    assert err.value.status == 404


def test_pod_logs_are_plain_text_with_previous_and_tail(lab: Lab) -> None:
    (pod,) = pod_names(lab, "app=paymentservice")
    wait_until(lambda: settled(lab, "paymentservice"))
    text = lab.core.read_namespaced_pod_log(pod, NS)
    assert "starting server" in text
    assert "paymentservice" in text
    assert lab.core.read_namespaced_pod_log(pod, NS, tail_lines=1).count("\n") == 1
    lab.cluster.report_container_exit(NS, pod, "Error", 1)
    wait_until(lambda: lab.core.read_namespaced_pod(pod, NS).status.container_statuses[0].ready)
    previous = lab.core.read_namespaced_pod_log(pod, NS, previous=True)
    assert "exiting" in previous
    cs = lab.core.read_namespaced_pod(pod, NS).status.container_statuses[0]
    assert cs.restart_count == 1
    assert cs.last_state.terminated.reason == "Error"


def test_dry_run_changes_nothing(lab: Lab) -> None:
    wait_until(
        lambda: all(
            settled(lab, d.metadata.name) for d in lab.apps.list_namespaced_deployment(NS).items
        )
    )
    time.sleep(0.2)  # last pod statuses and events settle
    before_pods = pod_names(lab, "")
    rv = lab.cluster.resource_version()
    preview = lab.apps.patch_namespaced_deployment(
        "frontend", NS, {"spec": {"replicas": 7}}, dry_run="All"
    )
    assert preview.spec.replicas == 7
    assert (
        lab.apps.patch_namespaced_deployment_scale(
            "frontend", NS, {"spec": {"replicas": 9}}, dry_run="All"
        ).spec.replicas
        == 9
    )
    assert (
        lab.core.patch_node(
            "node-b", {"spec": {"unschedulable": True}}, dry_run="All"
        ).spec.unschedulable
        is True
    )
    victim = sorted(before_pods)[0]
    lab.core.delete_namespaced_pod(victim, NS, dry_run="All")
    lab.core.create_namespaced_pod_eviction(
        victim, NS, client.V1Eviction(metadata=client.V1ObjectMeta(name=victim)), dry_run="All"
    )
    copy = lab.api_client.sanitize_for_serialization(
        lab.apps.read_namespaced_deployment("redis-cart", NS)
    )
    copy["metadata"] = {"name": "redis-copy"}
    created = lab.apps.create_namespaced_deployment(NS, copy, dry_run="All")
    assert created.metadata.name == "redis-copy"
    assert lab.cluster.resource_version() == rv
    assert lab.apps.read_namespaced_deployment("frontend", NS).spec.replicas == 2
    assert not lab.core.read_node("node-b").spec.unschedulable
    assert pod_names(lab, "") == before_pods


def test_errors_are_status_objects(lab: Lab) -> None:
    with pytest.raises(ApiException) as err:
        lab.apps.read_namespaced_deployment("nope", NS)
    assert err.value.status == 404
    assert error_of(err)["reason"] == "NotFound"
    assert error_of(err)["kind"] == "Status"
    existing = lab.api_client.sanitize_for_serialization(
        lab.apps.read_namespaced_deployment("frontend", NS)
    )
    with pytest.raises(ApiException) as err:
        lab.apps.create_namespaced_deployment(NS, existing)
    assert (err.value.status, error_of(err)["reason"]) == (409, "AlreadyExists")
    lab.apps.patch_namespaced_deployment("frontend", NS, {"metadata": {"labels": {"tier": "web"}}})
    with pytest.raises(ApiException) as err:
        lab.apps.replace_namespaced_deployment("frontend", NS, existing)
    assert (err.value.status, error_of(err)["reason"]) == (409, "Conflict")
    with pytest.raises(ApiException) as err:
        lab.apps.patch_namespaced_deployment_scale("frontend", NS, {"spec": {"replicas": -2}})
    assert (err.value.status, error_of(err)["reason"]) == (422, "Invalid")
    assert "spec.replicas" in error_of(err)["message"]
    with pytest.raises(ApiException) as err:
        lab.core.read_namespaced_pod_log("nope", NS)
    assert err.value.status == 404


def test_replace_round_trips_a_read_object(lab: Lab) -> None:
    wait_until(lambda: settled(lab, "currencyservice"))
    d = lab.apps.read_namespaced_deployment("currencyservice", NS)
    d.spec.replicas = 3
    replaced = lab.apps.replace_namespaced_deployment("currencyservice", NS, d)
    assert replaced.spec.replicas == 3
    assert replaced.metadata.generation == d.metadata.generation + 1
    rss = lab.apps.list_namespaced_replica_set(NS, label_selector="app=currencyservice").items
    assert len(rss) == 1  # same template: no new revision


def test_create_and_delete_a_deployment_cascades_to_its_pods(lab: Lab) -> None:
    body = lab.api_client.sanitize_for_serialization(
        lab.apps.read_namespaced_deployment("emailservice", NS)
    )
    body["metadata"] = {"name": "email-canary", "labels": {"app": "email-canary"}}
    body["spec"]["selector"] = {"matchLabels": {"app": "email-canary"}}
    body["spec"]["template"]["metadata"]["labels"] = {"app": "email-canary"}
    body.pop("status")
    created = lab.apps.create_namespaced_deployment(NS, body)
    assert created.metadata.uid
    wait_until(lambda: settled(lab, "email-canary"))
    assert len(pod_names(lab, "app=email-canary")) == 1
    status = lab.apps.delete_namespaced_deployment("email-canary", NS)
    assert status["status"] == "Success"
    wait_until(
        lambda: not lab.core.list_namespaced_pod(NS, label_selector="app=email-canary").items
    )
    assert not lab.apps.list_namespaced_replica_set(NS, label_selector="app=email-canary").items


def test_watch_streams_changes_to_the_official_watch_helper(lab: Lab) -> None:
    from kubernetes import watch

    wait_until(lambda: settled(lab, "frontend"))
    listed = lab.core.list_namespaced_pod(NS, label_selector="app=frontend")
    lab.apps.patch_namespaced_deployment_scale("frontend", NS, {"spec": {"replicas": 3}})
    seen: list[tuple[str, str, str]] = []
    stream = watch.Watch().stream(
        lab.core.list_namespaced_pod,
        NS,
        label_selector="app=frontend",
        resource_version=listed.metadata.resource_version,
        timeout_seconds=1,
    )
    for event in stream:
        pod = event["object"]
        seen.append((event["type"], pod.metadata.name, pod.status.phase))
    old = {p.metadata.name for p in listed.items}
    new = [s for s in seen if s[1] not in old]
    assert new
    assert new[0][0] == "ADDED"
    assert new[-1][2] == "Running"  # the new pod's start arrives as MODIFIED
    assert all(s[1] in old or s[1] == new[0][1] for s in seen)


def test_logs_follow_streams_new_lines_until_the_container_restarts(lab: Lab) -> None:
    (pod,) = pod_names(lab, "app=emailservice")
    wait_until(lambda: settled(lab, "emailservice"))
    response = lab.core.read_namespaced_pod_log(pod, NS, follow=True, _preload_content=False)
    lab.cluster.report_container_exit(NS, pod, "Error", 2)  # last line, then a new container
    text = b"".join(response.stream(1024)).decode()
    assert text.splitlines()[0].startswith('level=info msg="starting server"')
    assert 'msg="exiting" code=2 reason=Error' in text.splitlines()[-1]


def test_bad_query_parameters_are_bad_requests(lab: Lab) -> None:
    with pytest.raises(ApiException) as err:
        lab.core.list_namespaced_pod(NS, label_selector="app=frontend,===")
    assert err.value.status == 400
    assert "unable to parse requirement" in error_of(err)["message"]
    (pod,) = pod_names(lab, "app=adservice")
    with pytest.raises(ApiException) as err:
        lab.core.read_namespaced_pod_log(pod, NS, container="nope")
    assert err.value.status == 400
    with pytest.raises(ApiException) as err:
        lab.apps.patch_namespaced_deployment(
            "frontend", NS, {"spec": {"replicas": 1}}, dry_run="Sometimes"
        )
    assert err.value.status == 400
    assert "dryRun" in error_of(err)["message"]
    url = f"{lab.server.url}/api/v1/namespaces/{NS}/pods/{pod}/log?tailLines=ten"
    with pytest.raises(urllib.error.HTTPError) as http_err:
        urllib.request.urlopen(url, timeout=5)  # noqa: S310 - http on loopback
    assert http_err.value.code == 400
    assert "tailLines='ten' must be an integer" in json.loads(http_err.value.read())["message"]
