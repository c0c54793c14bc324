"""The Online Boutique (GoogleCloudPlatform/microservices-demo) as the lab cluster runs it.

Resource requests and limits follow the upstream manifests; replica counts are raised to two for the
services a PodDisruptionBudget protects, so that a drain can proceed one pod at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiops_lab.cluster.objects import Obj

if TYPE_CHECKING:
    from aiops_lab.cluster.cluster import Cluster

NAMESPACE = "boutique"
IMAGE_REPO = "us-central1-docker.pkg.dev/google-samples/microservices-demo"
VERSION = "v0.10.2"


@dataclass(frozen=True)
class Service:
    name: str
    port: int
    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str
    replicas: int = 1
    pdb_min_available: int | None = None
    image: str | None = None


SERVICES: tuple[Service, ...] = (
    Service("frontend", 8080, "100m", "200m", "64Mi", "128Mi", replicas=2, pdb_min_available=1),
    Service("cartservice", 7070, "200m", "300m", "64Mi", "128Mi", replicas=2, pdb_min_available=1),
    Service(
        "productcatalogservice",
        3550,
        "100m",
        "200m",
        "64Mi",
        "128Mi",
        replicas=2,
        pdb_min_available=1,
    ),
    Service(
        "currencyservice", 7000, "100m", "200m", "64Mi", "128Mi", replicas=2, pdb_min_available=1
    ),
    Service("paymentservice", 50051, "100m", "200m", "64Mi", "128Mi"),
    Service("shippingservice", 50051, "100m", "200m", "64Mi", "128Mi"),
    Service("emailservice", 8080, "100m", "200m", "64Mi", "128Mi"),
    Service(
        "checkoutservice", 5050, "100m", "200m", "64Mi", "128Mi", replicas=2, pdb_min_available=1
    ),
    Service("recommendationservice", 8080, "100m", "200m", "220Mi", "450Mi"),
    Service("adservice", 9555, "200m", "300m", "180Mi", "300Mi"),
    Service("redis-cart", 6379, "70m", "125m", "200Mi", "256Mi", image="redis:alpine"),
)
NAMES = tuple(s.name for s in SERVICES)


def deployment_manifest(svc: Service, namespace: str = NAMESPACE) -> Obj:
    labels = {"app": svc.name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": svc.name,
            "namespace": namespace,
            "labels": {**labels, "app.kubernetes.io/part-of": "online-boutique"},
        },
        "spec": {
            "replicas": svc.replicas,
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "serviceAccountName": "default",
                    "terminationGracePeriodSeconds": 5,
                    "containers": [
                        {
                            "name": "redis" if svc.name == "redis-cart" else "server",
                            "image": svc.image or f"{IMAGE_REPO}/{svc.name}:{VERSION}",
                            "ports": [{"containerPort": svc.port}],
                            "env": [{"name": "PORT", "value": str(svc.port)}],
                            "resources": {
                                "requests": {"cpu": svc.cpu_request, "memory": svc.memory_request},
                                "limits": {"cpu": svc.cpu_limit, "memory": svc.memory_limit},
                            },
                        }
                    ],
                },
            },
        },
    }


def pdb_manifest(svc: Service, namespace: str = NAMESPACE) -> Obj:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {
            "name": f"{svc.name}-pdb",
            "namespace": namespace,
            "labels": {"app": svc.name},
        },
        "spec": {
            "minAvailable": svc.pdb_min_available,
            "selector": {"matchLabels": {"app": svc.name}},
        },
    }


KUBE_PROXY: Obj = {
    "apiVersion": "apps/v1",
    "kind": "DaemonSet",
    "metadata": {
        "name": "kube-proxy",
        "namespace": "kube-system",
        "labels": {"k8s-app": "kube-proxy"},
    },
    "spec": {
        "selector": {"matchLabels": {"k8s-app": "kube-proxy"}},
        "updateStrategy": {"type": "RollingUpdate"},
        "template": {
            "metadata": {"labels": {"k8s-app": "kube-proxy"}},
            "spec": {
                "containers": [
                    {
                        "name": "kube-proxy",
                        "image": "registry.k8s.io/kube-proxy:v1.33.0",
                        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                    }
                ],
                "tolerations": [{"operator": "Exists"}],
            },
        },
    },
}


def seed_boutique(cluster: Cluster, namespace: str = NAMESPACE, *, kube_proxy: bool = True) -> None:
    """Create the shop's namespace, deployments and PDBs, plus a kube-proxy pod per node (a
    DaemonSet's pods, which a drain must leave alone)."""
    cluster.add_namespace(namespace)
    for svc in SERVICES:
        cluster.create("deployments", namespace, deployment_manifest(svc, namespace))
        if svc.pdb_min_available is not None:
            cluster.create("poddisruptionbudgets", namespace, pdb_manifest(svc, namespace))
    if kube_proxy:
        daemonset = cluster.create("daemonsets", "kube-system", KUBE_PROXY)
        for node in cluster.config.nodes:
            cluster.add_static_pod(
                "kube-system",
                f"kube-proxy-{node.name}",
                node.name,
                owner=daemonset,
                image=KUBE_PROXY["spec"]["template"]["spec"]["containers"][0]["image"],
            )
