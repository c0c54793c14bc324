"""Admission of written objects: the defaults and the validation the apiserver applies."""

from __future__ import annotations

import re
from collections.abc import Callable

from aiops_lab.cluster.errors import InvalidError
from aiops_lab.cluster.objects import Obj
from aiops_lab.cluster.quantity import parse_quantity
from aiops_lab.cluster.resources import RESOURCES
from aiops_lab.cluster.selectors import selector_to_matcher

_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


def default(plural: str, obj: Obj) -> None:
    """Fill the defaults the apiserver fills, so that equal templates compare equal."""
    spec = obj.setdefault("spec", {}) if plural not in ("events",) else {}
    if plural == "deployments":
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        strategy = spec.setdefault("strategy", {"type": "RollingUpdate"})
        if strategy.get("type", "RollingUpdate") == "RollingUpdate":
            strategy["type"] = "RollingUpdate"
            rolling = strategy.setdefault("rollingUpdate", {})
            rolling.setdefault("maxSurge", "25%")
            rolling.setdefault("maxUnavailable", "25%")
        _default_pod_spec(spec.setdefault("template", {}).setdefault("spec", {}))
    elif plural == "daemonsets":
        spec.setdefault("updateStrategy", {"type": "RollingUpdate"})
        _default_pod_spec(spec.setdefault("template", {}).setdefault("spec", {}))
    elif plural == "pods":
        _default_pod_spec(spec)
    elif plural == "namespaces":
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"][
            "name"
        ]


def validate(plural: str, obj: Obj, old: Obj | None) -> None:
    """Refuse what the apiserver refuses (422), naming every bad field."""
    m = obj["metadata"]
    name = m["name"]
    kind = obj["kind"]
    causes: list[dict[str, str]] = []

    def invalid(field: str, message: str) -> None:
        causes.append({"reason": "FieldValueInvalid", "message": message, "field": field})

    if old is None and plural != "events" and not _DNS1123.match(name):
        invalid(
            "metadata.name",
            f'Invalid value: "{name}": a lowercase RFC 1123 subdomain '
            "must consist of lower case alphanumeric characters, '-' or '.'",
        )
    for field in ("labels", "annotations"):
        values = m.get(field)
        if values is not None and (
            not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values())
        ):
            invalid(f"metadata.{field}", "Invalid value: values must be strings")
    spec = obj.get("spec") or {}
    if plural == "deployments":
        replicas = spec.get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            invalid(
                "spec.replicas",
                f"Invalid value: {replicas!r}: must be greater than or equal to 0",
            )
        selector = spec.get("selector")
        tmpl_labels = (spec.get("template", {}).get("metadata") or {}).get("labels") or {}
        if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
            invalid("spec.selector", "Required value")
        elif not selector_to_matcher(selector)(tmpl_labels):
            invalid(
                "spec.template.metadata.labels",
                "Invalid value: `selector` does not match template `labels`",
            )
        if old is not None and selector != old.get("spec", {}).get("selector"):
            invalid("spec.selector", "Invalid value: field is immutable")
        _validate_containers(
            spec.get("template", {}).get("spec") or {}, "spec.template.spec", invalid
        )
    elif plural == "pods":
        _validate_containers(spec, "spec", invalid)
    elif plural == "poddisruptionbudgets":
        if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
            invalid("spec", "Invalid value: minAvailable and maxUnavailable are exclusive")
    elif plural == "nodes" and not isinstance(spec.get("unschedulable", False), bool):
        invalid("spec.unschedulable", "Invalid value: must be true or false")
    if causes:
        raise InvalidError(
            f"{kind}{'.' + RESOURCES[plural].group if RESOURCES[plural].group else ''} "
            f'"{name}" is invalid: ' + "; ".join(f"{c['field']}: {c['message']}" for c in causes),
            kind=kind,
            name=name,
            group=RESOURCES[plural].group,
            causes=causes,
        )


def _default_pod_spec(spec: Obj) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    for c in spec.get("containers") or []:
        if isinstance(c, dict):
            c.setdefault("imagePullPolicy", "IfNotPresent")
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
            c.setdefault("resources", {})
            for port in c.get("ports") or []:
                if isinstance(port, dict):
                    port.setdefault("protocol", "TCP")


def _validate_containers(pod_spec: Obj, path: str, invalid: Callable[[str, str], None]) -> None:
    containers = pod_spec.get("containers")
    if not containers:
        invalid(f"{path}.containers", "Required value")
        return
    for i, c in enumerate(containers):
        if not isinstance(c, dict) or not c.get("name"):
            invalid(f"{path}.containers[{i}].name", "Required value")
        elif not c.get("image"):
            invalid(f"{path}.containers[{i}].image", "Required value")
        for kind in ("limits", "requests"):
            for res, qty in ((c.get("resources") or {}).get(kind) or {}).items():
                try:
                    parse_quantity(qty)
                except (ValueError, TypeError):
                    invalid(
                        f"{path}.containers[{i}].resources.{kind}[{res}]",
                        f"Invalid value: {qty!r}: write quantities like '250m' or '128Mi'",
                    )
