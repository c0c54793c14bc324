"""The Kubernetes manifests in deploy/kubernetes, checked offline.

Every object validates against the Kubernetes 1.33 OpenAPI schemas (kubernetes-validate, strict:
unknown fields are errors); the worker's RBAC grants exactly what the shipped playbooks' actions,
their preconditions and the investigation need, and nothing dangerous; the pods are hardened; the
settings the pods receive are real aiops settings; the kustomization ties it all together.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from collections.abc import Iterator
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from pydantic import BaseModel, SecretStr

from aiops.cli import build_parser
from aiops.config import Settings, load_settings
from aiops.incidents.rules import load_rules
from aiops.playbooks.actions import ACTIONS
from aiops.playbooks.models import K8sCheck

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "deploy" / "kubernetes"
CONFIG = MANIFESTS / "config"
K8S_VERSION = "1.33"
NAMESPACE = "aiops"
IMAGE = "ghcr.io/aiops/aiops"
WORKER_SA = ("aiops-worker", NAMESPACE)

Obj = dict[str, Any]
Grant = tuple[str, str, str]  # (apiGroup, resource, verb)

# What each playbook action calls on the API server (see aiops/integrations/kubernetes.py).
# Server-side dry-run needs the same verbs as the real call.
ACTION_CALLS: dict[str, set[Grant]] = {
    # read, then patch the restart annotation keyed by incident id
    "k8s.rollout_restart": {("apps", "deployments", "get"), ("apps", "deployments", "patch")},
    # scale *to* N through the scale subresource
    "k8s.scale": {("apps", "deployments/scale", "get"), ("apps", "deployments/scale", "patch")},
    # as `kubectl rollout undo`: find the previous ReplicaSet, patch its template back in
    "k8s.rollout_undo": {
        ("apps", "deployments", "get"),
        ("apps", "replicasets", "list"),
        ("apps", "deployments", "patch"),
    },
    "k8s.delete_pod": {("", "pods", "get"), ("", "pods", "delete")},
    "k8s.cordon": {("", "nodes", "get"), ("", "nodes", "patch")},
    # cordon, list the node's pods in every namespace, evict them (PodDisruptionBudgets hold)
    "k8s.drain": {
        ("", "nodes", "get"),
        ("", "nodes", "patch"),
        ("", "pods", "list"),
        ("", "pods/eviction", "create"),
    },
}

# Kubernetes preconditions playbooks may name (`k8s: <check>`).
CHECK_CALLS: dict[str, set[Grant]] = {
    "deployment_exists": {("apps", "deployments", "get")},
    "deployment_has_previous_revision": {
        ("apps", "deployments", "get"),
        ("apps", "replicasets", "list"),
    },
    "pod_exists": {("", "pods", "get")},
    "node_exists": {("", "nodes", "get")},
    "node_ready": {("", "nodes", "get")},
    "other_nodes_schedulable": {("", "nodes", "list")},
}

# Read-only access for investigation (evidence, topology, PodDisruptionBudget bounds).
_READ = ("get", "list", "watch")
INVESTIGATION_CALLS: set[Grant] = {
    (group, resource, verb)
    for group, resource in [
        ("", "pods"),
        ("", "events"),
        ("", "nodes"),
        ("apps", "deployments"),
        ("apps", "replicasets"),
        ("policy", "poddisruptionbudgets"),
    ]
    for verb in _READ
} | {("", "pods/log", "get")}

NEEDED: set[Grant] = (
    set().union(*ACTION_CALLS.values()) | set().union(*CHECK_CALLS.values()) | INVESTIGATION_CALLS
)

FORBIDDEN_VERBS = {"escalate", "bind", "impersonate", "*"}
# Reading Secrets, or reaching into containers, is a path to every other credential.
FORBIDDEN_RESOURCES = {
    "secrets",
    "pods/exec",
    "pods/attach",
    "pods/portforward",
    "serviceaccounts/token",
}


# --------------------------------------------------------------------------- loading


def manifest_files() -> list[Path]:
    return sorted(p for p in MANIFESTS.glob("*.yaml") if p.name != "kustomization.yaml")


def load_objects(files: list[Path] | None = None) -> list[tuple[str, Obj]]:
    """(where, object) for every YAML document; `where` is file:document-number."""
    found = []
    for path in files if files is not None else manifest_files():
        for index, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if doc is not None:
                found.append((f"{path.relative_to(REPO)}#{index}", doc))
    return found


def kinds(objects: list[tuple[str, Obj]], kind: str) -> list[Obj]:
    return [obj for _, obj in objects if obj.get("kind") == kind]


def by_name(objects: list[tuple[str, Obj]], kind: str, name: str) -> Obj:
    matches = [obj for obj in kinds(objects, kind) if obj["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} named {name}, found {len(matches)}"
    return matches[0]


def kustomization(folder: Path = MANIFESTS) -> Obj:
    data: Obj = yaml.safe_load((folder / "kustomization.yaml").read_text())
    return data


def pod_specs(objects: list[tuple[str, Obj]]) -> Iterator[tuple[str, Obj]]:
    for where, obj in objects:
        if obj.get("kind") in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
            label = f"{where} {obj['kind']}/{obj['metadata']['name']}"
            yield label, obj["spec"]["template"]["spec"]


def containers(spec: Obj) -> list[Obj]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def read_env_file(path: Path) -> dict[str, str]:
    """A kustomize `envs:` file: KEY=VALUE lines, # comments and blank lines skipped."""
    values = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.relative_to(REPO)}:{number}: expected KEY=VALUE, got {line!r}"
        values[key] = value
    return values


def playbook_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.yaml")) if folder.is_dir() else []


def _walk_key(node: Any, key: str) -> Iterator[Any]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key:
                yield v
            yield from _walk_key(v, key)
    elif isinstance(node, list):
        for item in node:
            yield from _walk_key(item, key)


def playbook_usage(files: list[Path]) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """action -> files using it (steps and compensation), check -> files naming it."""
    actions: dict[str, set[str]] = {}
    checks: dict[str, set[str]] = {}
    for path in files:
        doc = yaml.safe_load(path.read_text())
        for value in _walk_key(doc, "action"):
            actions.setdefault(str(value), set()).add(path.name)
        for value in _walk_key(doc, "k8s"):
            checks.setdefault(str(value), set()).add(path.name)
    return actions, checks


# --------------------------------------------------------------------------- RBAC model


def worker_grants(objects: list[tuple[str, Obj]]) -> tuple[set[Grant], list[str]]:
    """Everything the worker's ServiceAccount may do, and the problems found on the way."""
    problems: list[str] = []
    roles = {
        (obj["kind"], obj["metadata"]["name"]): obj
        for obj in kinds(objects, "ClusterRole") + kinds(objects, "Role")
    }
    bound: set[tuple[str, str]] = set()
    grants: set[Grant] = set()
    for binding in kinds(objects, "ClusterRoleBinding") + kinds(objects, "RoleBinding"):
        ref = (binding["roleRef"]["kind"], binding["roleRef"]["name"])
        subjects = {(s["kind"], s["name"], s.get("namespace")) for s in binding["subjects"]}
        if subjects != {("ServiceAccount", *WORKER_SA)}:
            problems.append(
                f"binding {binding['metadata']['name']} has subjects {sorted(subjects, key=str)}; "
                f"only ServiceAccount {WORKER_SA[1]}/{WORKER_SA[0]} may be bound"
            )
        if ref not in roles:
            problems.append(f"binding {binding['metadata']['name']} refers to missing {ref}")
            continue
        bound.add(ref)
        for rule in roles[ref].get("rules", []):
            if rule.get("nonResourceURLs"):
                problems.append(f"{ref[1]}: nonResourceURLs are not needed")
            if rule.get("resourceNames"):
                problems.append(f"{ref[1]}: resourceNames are not used by this model")
            for group in rule.get("apiGroups", []):
                for resource in rule.get("resources", []):
                    for verb in rule.get("verbs", []):
                        grants.add((group, resource, verb))
    for ref in sorted(set(roles) - bound):
        problems.append(f"{ref[0]} {ref[1]} is not bound to anything; remove it")
    return grants, problems


def rbac_problems(objects: list[tuple[str, Obj]]) -> list[str]:
    grants, problems = worker_grants(objects)
    for group, resource, verb in sorted(grants):
        if "*" in (group, resource, verb):
            problems.append(f"wildcard in ({group!r}, {resource!r}, {verb!r})")
        if resource in FORBIDDEN_RESOURCES:
            problems.append(f"access to {resource} ({verb}) is forbidden")
        if verb in FORBIDDEN_VERBS:
            problems.append(f"verb {verb} on {resource} is forbidden")
    for group, resource, verb in sorted(grants - NEEDED):
        problems.append(f"grants {verb} on {group or 'core'}/{resource}, which nothing needs")
    for group, resource, verb in sorted(NEEDED - grants):
        problems.append(f"lacks {verb} on {group or 'core'}/{resource}, which an action needs")
    return problems


def rules_of(objects: list[tuple[str, Obj]], name: str) -> list[Obj]:
    rules: list[Obj] = by_name(objects, "ClusterRole", name)["rules"]
    return rules


# --------------------------------------------------------------------------- schemas


def test_every_manifest_validates_against_the_kubernetes_schemas() -> None:
    objects = load_objects()
    assert {obj["kind"] for _, obj in objects} >= {
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "Service",
        "NetworkPolicy",
    }
    for where, obj in objects:
        try:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.absolute_path)
            pytest.fail(f"{where} {obj.get('kind')}: {path}: {exc.message}")


def test_the_schema_check_catches_a_misspelled_field() -> None:
    # Guards the test above against a validator that accepts anything.
    deployment = copy.deepcopy(by_name(load_objects(), "Deployment", "aiops-worker"))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"]["readOnlyRootFileSystem"] = True  # capital S: not a field
    with pytest.raises(kubernetes_validate.ValidationError, match="readOnlyRootFileSystem"):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def test_namespaced_objects_live_in_the_aiops_namespace() -> None:
    cluster_scoped = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
    for where, obj in load_objects():
        if obj["kind"] not in cluster_scoped:
            assert obj["metadata"].get("namespace") == NAMESPACE, where
    namespace = by_name(load_objects(), "Namespace", NAMESPACE)
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


# --------------------------------------------------------------------------- RBAC


def test_rbac_grants_exactly_what_the_actions_and_investigation_need() -> None:
    assert rbac_problems(load_objects()) == []


@pytest.mark.parametrize(
    ("role", "rule", "expected"),
    [
        (
            "aiops-read",
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
            "access to secrets (get) is forbidden",
        ),
        (
            "aiops-read",
            {"apiGroups": ["*"], "resources": ["pods"], "verbs": ["get"]},
            "wildcard in ('*', 'pods', 'get')",
        ),
        (
            "aiops-remediate-workloads",
            {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["update"]},
            "grants update on apps/deployments, which nothing needs",
        ),
        (
            "aiops-remediate-nodes",
            {
                "apiGroups": ["rbac.authorization.k8s.io"],
                "resources": ["clusterroles"],
                "verbs": ["escalate"],
            },
            "verb escalate on clusterroles is forbidden",
        ),
    ],
)
def test_rbac_check_refuses_extra_or_dangerous_grants(role: str, rule: Obj, expected: str) -> None:
    objects = copy.deepcopy(load_objects())
    rules_of(objects, role).append(rule)
    assert expected in rbac_problems(objects)


def test_rbac_check_notices_a_missing_verb() -> None:
    objects = copy.deepcopy(load_objects())
    for rule in rules_of(objects, "aiops-remediate-nodes"):
        rule["verbs"] = [v for v in rule["verbs"] if v != "create"]
    assert "lacks create on core/pods/eviction, which an action needs" in rbac_problems(objects)


@pytest.mark.parametrize("name", ["aiops-mcp", "aiops-webhook"])
def test_the_temporal_only_clients_have_no_kubernetes_credentials(name: str) -> None:
    objects = load_objects()
    account = by_name(objects, "ServiceAccount", name)
    assert account["automountServiceAccountToken"] is False
    spec = by_name(objects, "Deployment", name)["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == name
    assert spec["automountServiceAccountToken"] is False
    worker = by_name(objects, "Deployment", "aiops-worker")["spec"]["template"]["spec"]
    assert worker["serviceAccountName"] == WORKER_SA[0]


@pytest.mark.parametrize(
    "folder", [REPO / "playbooks", CONFIG / "playbooks"], ids=["repo", "configmap"]
)
def test_the_action_table_matches_the_playbooks(folder: Path) -> None:
    files = playbook_files(folder)
    if not files:
        pytest.skip(f"no playbooks in {folder.relative_to(REPO)} yet")
    actions, checks = playbook_usage(files)
    unknown = {a: sorted(f) for a, f in actions.items() if a not in ACTION_CALLS}
    assert not unknown, (
        f"playbooks use actions the RBAC table does not know: {unknown}; add their API calls to "
        "ACTION_CALLS here and the verbs to deploy/kubernetes/rbac.yaml"
    )
    unused = sorted(set(ACTION_CALLS) - set(actions))
    assert not unused, (
        f"no playbook in {folder.relative_to(REPO)} uses {unused}, yet RBAC grants their verbs; "
        "remove them from ACTION_CALLS and deploy/kubernetes/rbac.yaml"
    )
    unknown_checks = {c: sorted(f) for c, f in checks.items() if c not in CHECK_CALLS}
    assert not unknown_checks, (
        f"playbooks use Kubernetes preconditions the RBAC table does not know: {unknown_checks}; "
        "add their API calls to CHECK_CALLS (and rbac.yaml if they need more)"
    )


def test_the_tables_cover_every_action_and_check_a_playbook_may_name() -> None:
    assert set(ACTION_CALLS) == set(ACTIONS), "keep ACTION_CALLS in step with the allow-list"
    assert set(CHECK_CALLS) == {check.value for check in K8sCheck}, (
        "keep CHECK_CALLS in step with aiops.playbooks.models.K8sCheck"
    )


def test_the_worker_starts_with_the_shipped_config_maps() -> None:
    # The worker refuses to start on an invalid policy or playbook; the shipped copies must load.
    rules = load_rules(
        Settings(playbooks_dir=CONFIG / "playbooks", policies_dir=CONFIG / "policies")
    )
    shipped = {p.stem for p in playbook_files(CONFIG / "playbooks")}
    assert set(rules.playbooks.playbooks) == shipped
    assert rules.policy.allow, "a policy that allows nothing makes the deployment pointless"


# --------------------------------------------------------------------------- pods


def test_pods_run_non_root_with_a_read_only_root_filesystem() -> None:
    specs = list(pod_specs(load_objects()))
    assert len(specs) == 3
    for where, spec in specs:
        pod_sc = spec.get("securityContext", {})
        assert not any(spec.get(k) for k in ("hostNetwork", "hostPID", "hostIPC")), where
        assert not any("hostPath" in v for v in spec.get("volumes", [])), where
        for container in containers(spec):
            sc = container.get("securityContext", {})
            name = f"{where} container {container['name']}"
            assert sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True, name
            assert sc.get("runAsUser", pod_sc.get("runAsUser", 0)) != 0, name
            assert sc.get("readOnlyRootFilesystem") is True, name
            assert sc.get("allowPrivilegeEscalation") is False, name
            assert sc.get("privileged", False) is False, name
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], name
            assert not sc.get("capabilities", {}).get("add"), name
            seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {}))
            assert seccomp.get("type") == "RuntimeDefault", name
            resources = container.get("resources", {})
            assert {"cpu", "memory"} <= set(resources.get("requests", {})), name
            assert "memory" in resources.get("limits", {}), name
            assert container["image"].startswith(f"{IMAGE}:"), name


def test_writable_paths_are_volumes() -> None:
    # A read-only root filesystem needs the state directory and /tmp on volumes.
    objects = load_objects()
    settings_env = read_env_file(CONFIG / "settings.env")
    worker = by_name(objects, "Deployment", "aiops-worker")["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m for m in worker["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in worker["volumes"]}
    for path in (settings_env["AIOPS_STATE_DIR"], "/tmp"):
        assert path in mounts, f"worker: nothing mounted at {path}"
        assert not mounts[path].get("readOnly", False)
        assert "emptyDir" in volumes[mounts[path]["name"]]


def test_the_containers_run_real_aiops_commands() -> None:
    objects = load_objects()
    parser = build_parser()
    commands = {}
    for name in ("aiops-worker", "aiops-mcp", "aiops-webhook"):
        spec = by_name(objects, "Deployment", name)["spec"]["template"]["spec"]
        container = spec["containers"][0]
        argv = [*container.get("command", []), *container.get("args", [])]
        assert argv[0] == "aiops", name
        commands[name] = parser.parse_args(argv[1:])
    assert commands["aiops-worker"].command == "worker"
    mcp = commands["aiops-mcp"]
    assert (mcp.command, mcp.transport, mcp.host) == ("mcp", "http", "0.0.0.0")
    webhook = commands["aiops-webhook"]
    assert (webhook.command, webhook.host, webhook.port) == ("webhook", "0.0.0.0", None)


@pytest.mark.parametrize(
    ("name", "port_setting"),
    [("aiops-mcp", "AIOPS_MCP__PORT"), ("aiops-webhook", "AIOPS_ALERTMANAGER__PORT")],
)
def test_each_service_reaches_the_port_its_server_listens_on(name: str, port_setting: str) -> None:
    objects = load_objects()
    port = int(read_env_file(CONFIG / "settings.env")[port_setting])
    deployment = by_name(objects, "Deployment", name)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    service = by_name(objects, "Service", name)
    target = service["spec"]["ports"][0]["targetPort"]
    assert named.get(target, target) == port
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    ingress = by_name(objects, "NetworkPolicy", f"{name}-ingress")
    assert ingress["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert [p["port"] for p in ingress["spec"]["ingress"][0]["ports"]] == [target]


# --------------------------------------------------------------------------- settings


def _setting_field(name: str) -> tuple[bool, bool]:
    """(exists, is a secret) for an AIOPS_ variable, following `__` into nested models."""
    model: type[BaseModel] = Settings
    parts = name.removeprefix("AIOPS_").lower().split("__")
    for i, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return False, False
        annotation = field.annotation
        if i < len(parts) - 1:
            if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
                return False, False
            model = annotation
    secret = "SecretStr" in str(annotation) or annotation is SecretStr or parts == ["mcp", "tokens"]
    return True, secret


def _container_env() -> list[tuple[str, Obj]]:
    found = []
    for where, spec in pod_specs(load_objects()):
        for container in containers(spec):
            for var in container.get("env", []):
                found.append((f"{where} container {container['name']}", var))
    return found


def test_every_aiops_variable_is_a_real_setting() -> None:
    settings_env = read_env_file(CONFIG / "settings.env")
    assert {
        "AIOPS_TEMPORAL__ADDRESS",
        "AIOPS_PROMETHEUS__URL",
        "AIOPS_KUBERNETES__IN_CLUSTER",
    } <= set(settings_env)
    names = [(f"config/settings.env {k}", k) for k in settings_env]
    names += [(where, var["name"]) for where, var in _container_env()]
    for where, name in names:
        if name.startswith("AIOPS_"):
            exists, _ = _setting_field(name)
            assert exists, f"{where}: {name} is not an aiops setting (see aiops/config.py)"


def test_secrets_come_only_from_optional_secret_refs() -> None:
    for key in read_env_file(CONFIG / "settings.env"):
        assert not _setting_field(key)[1], f"config/settings.env: {key} is a secret; use a Secret"
    refs = [(where, var) for where, var in _container_env() if "valueFrom" in var]
    assert {var["name"] for _, var in refs} >= {
        "AIOPS_SLACK__BOT_TOKEN",
        "AIOPS_MCP__TOKENS",
        "AIOPS_ALERTMANAGER__TOKENS",
    }
    for where, var in refs:
        ref = var["valueFrom"]["secretKeyRef"]
        assert ref["name"] == "aiops-secrets", where
        # Optional: aiops starts without Slack, an LLM or Temporal Cloud.
        assert ref["optional"] is True, f"{where}: {var['name']} must be optional"
        assert _setting_field(var["name"])[1], f"{where}: {var['name']} is not a secret setting"


def test_the_settings_load_as_the_pods_see_them(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("AIOPS_"):
            monkeypatch.delenv(name)
    settings_env = read_env_file(CONFIG / "settings.env")
    for key, value in settings_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AIOPS_SLACK__BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("AIOPS_MCP__TOKENS", '{"token-1": "alice@example.com"}')
    monkeypatch.setenv("AIOPS_ALERTMANAGER__TOKENS", '["am-token-1"]')
    settings = load_settings()
    assert [t.get_secret_value() for t in settings.alertmanager.tokens] == ["am-token-1"]
    assert settings.kubernetes.in_cluster is True
    assert settings.temporal.address == settings_env["AIOPS_TEMPORAL__ADDRESS"]
    assert settings.prometheus.url == settings_env["AIOPS_PROMETHEUS__URL"].rstrip("/")
    assert settings.mcp.tokens == {"token-1": "alice@example.com"}

    worker = by_name(load_objects(), "Deployment", "aiops-worker")["spec"]["template"]["spec"]
    mounted = {
        m["mountPath"]: next(v for v in worker["volumes"] if v["name"] == m["name"])
        for m in worker["containers"][0]["volumeMounts"]
    }
    assert mounted[str(settings.playbooks_dir)]["configMap"]["name"] == "aiops-playbooks"
    assert mounted[str(settings.policies_dir)]["configMap"]["name"] == "aiops-policies"


# --------------------------------------------------------------------------- kustomize


def _generated(folder: Path) -> dict[str, list[str]]:
    """ConfigMap name -> files/envs its generator reads, in `folder`'s kustomization."""
    return {
        gen["name"]: [*gen.get("files", []), *gen.get("envs", [])]
        for gen in kustomization(folder).get("configMapGenerator", [])
    }


def test_the_kustomization_lists_every_manifest_and_config_map() -> None:
    resources = kustomization().get("resources", [])
    assert sorted(r for r in resources if r.endswith(".yaml")) == [
        p.name for p in manifest_files()
    ], "every manifest in deploy/kubernetes belongs in kustomization.yaml resources"
    assert "config" in resources
    generated = _generated(MANIFESTS) | _generated(CONFIG)
    for folder, names in [(MANIFESTS, _generated(MANIFESTS)), (CONFIG, _generated(CONFIG))]:
        for files in names.values():
            for file in files:
                assert (folder / file).is_file(), f"{folder / file} is missing"
    listed = set(_generated(CONFIG)["aiops-playbooks"])
    on_disk = {f"playbooks/{p.name}" for p in playbook_files(CONFIG / "playbooks")}
    assert listed == on_disk, "run deploy/kubernetes/sync-config.sh"
    for where, spec in pod_specs(load_objects()):
        for container in spec["containers"]:
            for source in container.get("envFrom", []):
                assert source["configMapRef"]["name"] in generated, where
        for volume in spec.get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in generated, where
    images = {i["name"] for i in kustomization().get("images", [])}
    assert IMAGE in images, "the image must be overridable with `kustomize edit set image`"


def test_the_image_tag_is_the_package_version() -> None:
    # A release bumps pyproject.toml; the manifests must then pull the matching image.
    entry = next(i for i in kustomization()["images"] if i["name"] == IMAGE)
    assert entry["newTag"] == package_version("aiops-daemon")
    for where, spec in pod_specs(load_objects()):
        for container in containers(spec):
            assert container["image"] == f"{IMAGE}:{package_version('aiops-daemon')}", where


def test_the_config_map_copies_match_the_repository() -> None:
    repo_playbooks = playbook_files(REPO / "playbooks")
    repo_policy = REPO / "policies" / "default.yaml"
    if not repo_playbooks or not repo_policy.is_file():
        pytest.skip("the repository has no playbooks/*.yaml or policies/default.yaml yet")
    copies = {p.name: p.read_bytes() for p in playbook_files(CONFIG / "playbooks")}
    originals = {p.name: p.read_bytes() for p in repo_playbooks}
    stale = sorted(set(copies) ^ set(originals)) + sorted(
        n for n in set(copies) & set(originals) if copies[n] != originals[n]
    )
    if (CONFIG / "policies" / "default.yaml").read_bytes() != repo_policy.read_bytes():
        stale.append("policies/default.yaml")
    assert not stale, (
        f"deploy/kubernetes/config is stale ({stale}); run deploy/kubernetes/sync-config.sh"
    )


def _kustomize() -> list[str]:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    pytest.skip("neither kustomize nor kubectl is installed")


def _build(folder: Path) -> list[tuple[str, Obj]]:
    done = subprocess.run(
        [*_kustomize(), str(folder)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return [(f"rendered#{i}", d) for i, d in enumerate(yaml.safe_load_all(done.stdout)) if d]


def test_the_rendered_kustomization_is_valid_and_consistent() -> None:
    rendered = _build(MANIFESTS)
    for where, obj in rendered:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        if obj["kind"] not in {"Namespace", "ClusterRole", "ClusterRoleBinding"}:
            assert obj["metadata"]["namespace"] == NAMESPACE, where
    assert rbac_problems(rendered) == []
    config_maps = {obj["metadata"]["name"]: obj for obj in kinds(rendered, "ConfigMap")}
    for where, spec in pod_specs(rendered):
        used = [v["configMap"]["name"] for v in spec.get("volumes", []) if "configMap" in v]
        used += [
            s["configMapRef"]["name"] for c in spec["containers"] for s in c.get("envFrom", [])
        ]
        for name in used:
            assert name in config_maps, f"{where}: ConfigMap {name} is not rendered"
    settings = next(c for n, c in config_maps.items() if n.startswith("aiops-settings-"))
    assert settings["data"] == read_env_file(CONFIG / "settings.env")
    playbooks = next(c for n, c in config_maps.items() if n.startswith("aiops-playbooks-"))
    assert set(playbooks["data"]) == {p.name for p in playbook_files(CONFIG / "playbooks")}


def test_an_overlay_can_replace_the_image(tmp_path: Path) -> None:
    overlay = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        # kustomize takes only relative paths to other kustomizations.
        "resources": [os.path.relpath(MANIFESTS, tmp_path)],
        "images": [{"name": IMAGE, "newName": "registry.example.com/aiops", "newTag": "9.9.9"}],
    }
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(overlay))
    images = {c["image"] for _, spec in pod_specs(_build(tmp_path)) for c in containers(spec)}
    assert images == {"registry.example.com/aiops:9.9.9"}
