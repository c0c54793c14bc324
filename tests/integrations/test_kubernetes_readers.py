"""KubernetesReader through the official client against a loopback API stub (no apiserver can
be installed here). The stub answers schema-valid objects and records every request."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from kubernetes import client

from aiops.agent import ClusterReadError
from aiops.integrations.kubernetes.readers import KubernetesReader

NS = "shop"
T1, T2 = "2026-01-01T10:00:00Z", "2026-01-01T10:20:00Z"


def meta(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": NS, "uid": f"uid-{name}", "creationTimestamp": T1, **extra}


def rs(name: str, rev: str, image: str, created: str) -> dict[str, Any]:
    return {
        "metadata": {
            **meta(name),
            "creationTimestamp": created,
            "annotations": {"deployment.kubernetes.io/revision": rev},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": "cart",
                    "uid": "u",
                    "controller": True,
                }
            ],
        },
        "spec": {
            "selector": {"matchLabels": {"app": "cart"}},
            "template": {"spec": {"containers": [{"name": "cart", "image": image}]}},
        },
        "status": {"replicas": 1},
    }


OBJECTS: dict[str, dict[str, Any]] = {
    f"/apis/apps/v1/namespaces/{NS}/replicasets": {
        "kind": "ReplicaSetList",
        "apiVersion": "apps/v1",
        "metadata": {},
        "items": [
            rs("cart-5d4f8b7c9a", "1", "shop/cart:1.0", T1),
            rs("cart-7b6c5d4e3f", "2", "shop/cart:1.1", T2),
        ],
    },
    f"/apis/apps/v1/namespaces/{NS}/deployments": {
        "kind": "DeploymentList",
        "apiVersion": "apps/v1",
        "metadata": {},
        "items": [
            {
                "metadata": {
                    **meta("cart"),
                    "annotations": {"deployment.kubernetes.io/revision": "2"},
                },
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": {"app": "cart"}},
                    "template": {
                        "spec": {"containers": [{"name": "cart", "image": "shop/cart:1.1"}]}
                    },
                },
                "status": {"availableReplicas": 1},
            }
        ],
    },
    f"/api/v1/namespaces/{NS}/pods": {
        "kind": "PodList",
        "apiVersion": "v1",
        "metadata": {},
        "items": [
            {
                "metadata": {
                    **meta("cart-7b6c5d4e3f-abcde"),
                    "ownerReferences": [
                        {
                            "apiVersion": "apps/v1",
                            "kind": "ReplicaSet",
                            "name": "cart-7b6c5d4e3f",
                            "uid": "u",
                        }
                    ],
                },
                "spec": {"nodeName": "node-1", "containers": [{"name": "cart"}]},
                "status": {
                    "phase": "Running",
                    "containerStatuses": [
                        {
                            "name": "cart",
                            "ready": False,
                            "restartCount": 4,
                            "image": "shop/cart:1.1",
                            "imageID": "",
                            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                            "lastState": {
                                "terminated": {
                                    "exitCode": 137,
                                    "reason": "OOMKilled",
                                    "finishedAt": T2,
                                }
                            },
                        }
                    ],
                },
            }
        ],
    },
    f"/api/v1/namespaces/{NS}/events": {
        "kind": "EventList",
        "apiVersion": "v1",
        "metadata": {},
        "items": [
            {
                "metadata": meta("cart.1"),
                "reason": "BackOff",
                "type": "Warning",
                "message": "Back-off restarting failed container",
                "count": 7,
                "firstTimestamp": T1,
                "lastTimestamp": T2,
                "involvedObject": {"kind": "Pod", "name": "cart-7b6c5d4e3f-abcde", "namespace": NS},
            }
        ],
    },
    "/api/v1/nodes": {
        "kind": "NodeList",
        "apiVersion": "v1",
        "metadata": {},
        "items": [
            {
                "metadata": {"name": "node-1", "uid": "n1"},
                "spec": {"unschedulable": True},
                "status": {
                    "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
                    "conditions": [
                        {
                            "type": "MemoryPressure",
                            "status": "True",
                            "reason": "KubeletHasMemoryPressure",
                            "lastTransitionTime": T2,
                        }
                    ],
                },
            }
        ],
    },
}
LOG = "".join(f"line {i} password=hunter{i}\n" for i in range(5000))


class Stub:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        self.fail_with: int | None = None
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _any(self) -> None:
                url = urlparse(self.path)
                stub.requests.append((self.command, self.path))
                if stub.fail_with is not None:
                    return self._send(
                        stub.fail_with,
                        {
                            "kind": "Status",
                            "apiVersion": "v1",
                            "status": "Failure",
                            "reason": "Forbidden",
                            "code": stub.fail_with,
                        },
                    )
                if self.command != "GET":
                    return self._send(405, {})
                if url.path.endswith("/log"):
                    q = parse_qs(url.query)
                    text = LOG
                    if "tailLines" in q:
                        text = "".join(text.splitlines(True)[-int(q["tailLines"][0]) :])
                    if "limitBytes" in q:
                        text = text[: int(q["limitBytes"][0])]
                    return self._send(200, text, content_type="text/plain")
                body = OBJECTS.get(url.path)
                return self._send(200 if body else 404, body or {"kind": "Status", "code": 404})

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any  # noqa: N815

            def _send(self, code: int, body: Any, content_type: str = "application/json") -> None:
                raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: object) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub() -> Iterator[Stub]:
    s = Stub()
    yield s
    s.close()


@pytest.fixture
def reader(stub: Stub) -> KubernetesReader:
    cfg = client.Configuration()
    cfg.host = stub.url
    return KubernetesReader(client.ApiClient(cfg), log_limit_bytes=2000, timeout_s=5)


def test_rollout_history_with_revisions_and_images(reader: KubernetesReader) -> None:
    sets = sorted(reader.list_replicasets(NS), key=lambda r: r.revision or 0)
    assert [(r.name, r.deployment, r.revision, r.images) for r in sets] == [
        ("cart-5d4f8b7c9a", "cart", 1, ["shop/cart:1.0"]),
        ("cart-7b6c5d4e3f", "cart", 2, ["shop/cart:1.1"]),
    ]
    assert sets[1].created_at is not None and sets[1].created_at.isoformat().startswith(
        "2026-01-01T10:20"
    )
    (d,) = reader.list_deployments(NS)
    assert (d.name, d.replicas, d.available_replicas, d.revision) == ("cart", 2, 1, 2)


def test_pod_status_events_and_nodes(reader: KubernetesReader) -> None:
    (pod,) = reader.list_pods(NS)
    assert (pod.node, pod.owner_kind, pod.owner_name, pod.restarts) == (
        "node-1",
        "ReplicaSet",
        "cart-7b6c5d4e3f",
        4,
    )
    c = pod.containers[0]
    assert (c.waiting_reason, c.last_terminated_reason, c.last_exit_code) == (
        "CrashLoopBackOff",
        "OOMKilled",
        137,
    )
    (ev,) = reader.list_events(NS)
    assert (ev.reason, ev.object_kind, ev.object_name, ev.count) == (
        "BackOff",
        "Pod",
        "cart-7b6c5d4e3f-abcde",
        7,
    )
    (node,) = reader.list_nodes()
    assert node.unschedulable and node.internal_ip == "10.0.0.1"
    assert [(c.type, c.status) for c in node.conditions] == [("MemoryPressure", "True")]


def test_logs_are_size_capped(reader: KubernetesReader, stub: Stub) -> None:
    text = reader.pod_logs(NS, "cart-7b6c5d4e3f-abcde", tail_lines=1000)
    assert 0 < len(text) <= 2000
    assert text.startswith("line 4000 ")  # the tail, not the head
    assert "tailLines=1000" in stub.requests[-1][1] and "limitBytes=2000" in stub.requests[-1][1]


def test_only_reads_are_ever_sent(reader: KubernetesReader, stub: Stub) -> None:
    reader.list_replicasets(NS)
    reader.list_deployments(NS)
    reader.list_pods(NS)
    reader.list_events(NS)
    reader.list_nodes()
    reader.pod_logs(NS, "cart-7b6c5d4e3f-abcde")
    assert {m for m, _ in stub.requests} == {"GET"}
    assert not [
        name
        for name in dir(reader)
        if name.startswith(
            ("patch", "delete", "create", "replace", "scale", "cordon", "drain", "evict")
        )
    ]


def test_refusals_name_the_call_and_the_fix(reader: KubernetesReader, stub: Stub) -> None:
    stub.fail_with = 403
    with pytest.raises(ClusterReadError, match=r"list pods in shop: HTTP 403 .*permission"):
        reader.list_pods(NS)


def test_unreachable_api_is_a_clear_error() -> None:
    cfg = client.Configuration()
    cfg.host = "http://127.0.0.1:9"
    reader = KubernetesReader(client.ApiClient(cfg), timeout_s=2)
    with pytest.raises(ClusterReadError, match="could not list nodes"):
        reader.list_nodes()


def test_a_silent_api_costs_the_investigation_one_timeout_not_five() -> None:
    """The investigation's cluster reads run at once: against an API server that accepts and
    never answers they all end at the one request timeout, each with its note."""
    from aiops.agent.cluster import read_cluster
    from aiops.integrations.kubernetes.client import api_client

    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(16)
        cfg = client.Configuration()
        cfg.host = f"http://127.0.0.1:{hole.getsockname()[1]}"
        reader = KubernetesReader(api_client(cfg), timeout_s=1.0)  # as the worker builds it
        started = time.monotonic()
        facts = read_cluster(reader, NS)
        took = time.monotonic() - started
    assert took < 2.5, f"{took:.1f} s for five reads of 1 s each"
    assert len(facts.notes) == 5 and all("could not list" in n for n in facts.notes)
