"""Read-only Kubernetes access for the investigation agent (implements aiops.agent.ClusterReader).

Only list/read calls: ReplicaSets, Deployments, Pods, Events, Nodes and size-capped pod logs.
Failures become ClusterReadError with a message naming the call and what to check.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from aiops.agent.ports import (
    ClusterReadError,
    ContainerState,
    DeploymentInfo,
    EventInfo,
    NodeCondition,
    NodeInfo,
    PodInfo,
    ReplicaSetInfo,
)
from aiops.config import KubernetesSettings
from aiops.integrations.kubernetes.client import in_cluster_api_client, kubeconfig_api_client
from aiops.integrations.kubernetes.releases import REVISION, release_fingerprint


def api_client_from_settings(settings: KubernetesSettings) -> Any:
    """An ApiClient from in-cluster config, the given kubeconfig/context, or ~/.kube/config."""
    try:
        if settings.in_cluster:
            return in_cluster_api_client()
        return kubeconfig_api_client(
            str(settings.kubeconfig) if settings.kubeconfig else None, settings.context
        )
    except (config.ConfigException, OSError, TypeError) as exc:
        raise ClusterReadError(
            f"cannot load Kubernetes credentials ({exc}); set AIOPS_KUBERNETES__KUBECONFIG "
            "(and __CONTEXT), or AIOPS_KUBERNETES__IN_CLUSTER=true inside the cluster"
        ) from exc


class KubernetesReader:
    def __init__(
        self, api_client: Any, *, log_limit_bytes: int = 64_000, timeout_s: float = 10.0
    ) -> None:
        self._api = api_client
        self._core = client.CoreV1Api(api_client)
        self._apps = client.AppsV1Api(api_client)
        self._log_limit = log_limit_bytes
        self._timeout = timeout_s

    @classmethod
    def from_settings(cls, settings: KubernetesSettings) -> KubernetesReader:
        return cls(api_client_from_settings(settings))

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        # Any: the client's models have every field Optional; the records below re-type them.
        try:
            return fn()
        except ApiException as exc:
            hint = {
                401: "the credentials were refused",
                403: "the service account lacks list/get permission on it",
                404: "it does not exist",
            }.get(exc.status or 0, exc.reason or "error")
            raise ClusterReadError(
                f"Kubernetes refused to {what}: HTTP {exc.status} ({hint})"
            ) from exc
        except Exception as exc:  # connection errors, timeouts, bad responses
            raise ClusterReadError(
                f"could not {what}: {type(exc).__name__}: {exc}; check the API server address"
            ) from exc

    def list_replicasets(self, namespace: str) -> list[ReplicaSetInfo]:
        items = self._call(
            f"list replicasets in {namespace}",
            lambda: (
                self._apps.list_namespaced_replica_set(
                    namespace, _request_timeout=self._timeout
                ).items
            ),
        )
        out = []
        for rs in items or []:
            meta = rs.metadata
            owner = next(
                (o.name for o in meta.owner_references or [] if o.kind == "Deployment"), None
            )
            rev = (meta.annotations or {}).get(REVISION)
            spec = rs.spec.template.spec if rs.spec and rs.spec.template else None
            out.append(
                ReplicaSetInfo(
                    name=meta.name,
                    namespace=meta.namespace or namespace,
                    deployment=owner,
                    revision=int(rev) if rev and rev.isdigit() else None,
                    created_at=meta.creation_timestamp,
                    images=[c.image for c in (spec.containers if spec else []) if c.image],
                    replicas=(rs.status.replicas or 0) if rs.status else 0,
                    release=self._release(rs),
                )
            )
        return out

    def _release(self, rs: Any) -> str | None:
        if not (rs.spec and rs.spec.template):
            return None
        template = self._api.sanitize_for_serialization(rs.spec.template)
        return release_fingerprint(template) if isinstance(template, dict) else None

    def list_deployments(self, namespace: str) -> list[DeploymentInfo]:
        items = self._call(
            f"list deployments in {namespace}",
            lambda: (
                self._apps.list_namespaced_deployment(
                    namespace, _request_timeout=self._timeout
                ).items
            ),
        )
        out = []
        for d in items or []:
            rev = (d.metadata.annotations or {}).get(REVISION)
            spec = d.spec.template.spec if d.spec and d.spec.template else None
            out.append(
                DeploymentInfo(
                    name=d.metadata.name,
                    namespace=d.metadata.namespace or namespace,
                    replicas=(d.spec.replicas or 0) if d.spec else 0,
                    available_replicas=(d.status.available_replicas or 0) if d.status else 0,
                    revision=int(rev) if rev and rev.isdigit() else None,
                    images=[c.image for c in (spec.containers if spec else []) if c.image],
                )
            )
        return out

    def list_pods(self, namespace: str) -> list[PodInfo]:
        items = self._call(
            f"list pods in {namespace}",
            lambda: self._core.list_namespaced_pod(namespace, _request_timeout=self._timeout).items,
        )
        out = []
        for p in items or []:
            owner = next(iter(p.metadata.owner_references or []), None)
            statuses = (p.status.container_statuses or []) if p.status else []
            out.append(
                PodInfo(
                    name=p.metadata.name,
                    namespace=p.metadata.namespace or namespace,
                    node=p.spec.node_name if p.spec else None,
                    phase=(p.status.phase or "Unknown") if p.status else "Unknown",
                    owner_kind=owner.kind if owner else None,
                    owner_name=owner.name if owner else None,
                    created_at=p.metadata.creation_timestamp,
                    containers=[_container(c) for c in statuses],
                )
            )
        return out

    def list_events(self, namespace: str) -> list[EventInfo]:
        items = self._call(
            f"list events in {namespace}",
            lambda: (
                self._core.list_namespaced_event(namespace, _request_timeout=self._timeout).items
            ),
        )
        out = []
        for e in items or []:
            obj = e.involved_object
            last = e.last_timestamp or getattr(e, "event_time", None)
            out.append(
                EventInfo(
                    namespace=e.metadata.namespace or namespace,
                    reason=e.reason or "",
                    message=(e.message or "")[:1000],
                    type=e.type or "Normal",
                    object_kind=(obj.kind or "") if obj else "",
                    object_name=(obj.name or "") if obj else "",
                    count=e.count or 1,
                    first_at=e.first_timestamp,
                    last_at=last if isinstance(last, datetime) else None,
                )
            )
        return sorted(out, key=_event_time)

    def list_nodes(self) -> list[NodeInfo]:
        items = self._call(
            "list nodes", lambda: self._core.list_node(_request_timeout=self._timeout).items
        )
        out = []
        for n in items or []:
            status = n.status
            addrs = (status.addresses or []) if status else []
            out.append(
                NodeInfo(
                    name=n.metadata.name,
                    unschedulable=bool(n.spec.unschedulable) if n.spec else False,
                    conditions=[
                        NodeCondition(
                            type=c.type,
                            status=c.status,
                            reason=c.reason or "",
                            message=(c.message or "")[:300],
                            last_transition=c.last_transition_time,
                        )
                        for c in ((status.conditions or []) if status else [])
                    ],
                    internal_ip=next((a.address for a in addrs if a.type == "InternalIP"), None),
                )
            )
        return out

    def pod_logs(self, namespace: str, pod: str, *, tail_lines: int = 200) -> str:
        text = self._call(
            f"read the log of pod {namespace}/{pod}",
            lambda: self._core.read_namespaced_pod_log(
                pod,
                namespace,
                tail_lines=tail_lines,
                limit_bytes=self._log_limit,
                _request_timeout=self._timeout,
            ),
        )
        text = text if isinstance(text, str) else str(text)
        return text[-self._log_limit :]


def _event_time(ev: EventInfo) -> float:
    at = ev.last_at or ev.first_at
    return at.timestamp() if at is not None else 0.0


def _container(c: Any) -> ContainerState:
    state, last = c.state, c.last_state
    term = last.terminated if last else None
    return ContainerState(
        name=c.name,
        ready=bool(c.ready),
        restart_count=c.restart_count or 0,
        waiting_reason=state.waiting.reason if state and state.waiting else None,
        last_terminated_reason=term.reason if term else None,
        last_terminated_at=term.finished_at if term else None,
        last_exit_code=term.exit_code if term else None,
    )
