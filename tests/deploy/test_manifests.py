"""The Kubernetes manifests in deploy/kubernetes, checked offline.

Every object validates against the Kubernetes 1.33 OpenAPI schemas (kubernetes-validate, strict:
unknown fields are errors); each process's ServiceAccount is granted exactly the API calls its
code makes (derived from the code in tests/deploy/needs.py) and nothing dangerous; each pod mounts
exactly the files its process reads; every long-running process has liveness and readiness probes
on its telemetry endpoints; the pods are hardened; the settings the pods receive are real aiops
settings; the kustomization (and its components) ties it all together.
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
from tests.deploy.needs import Grant, mcp_tools, process_needs, reader_calls

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "deploy" / "kubernetes"
CONFIG = MANIFESTS / "config"
K8S_VERSION = "1.33"
NAMESPACE = "aiops"
IMAGE = "ghcr.io/aiops/aiops"

Obj = dict[str, Any]

NEEDS = process_needs()
PROCESSES = sorted(NEEDS)  # Deployment and ServiceAccount names

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


# --------------------------------------------------------------------------- RBAC model


def granted(objects: list[tuple[str, Obj]]) -> tuple[dict[str, set[Grant]], list[str]]:
    """ServiceAccount name -> everything it may do, and the problems found on the way."""
    problems: list[str] = []
    roles = {
        (obj["kind"], obj["metadata"]["name"]): obj
        for obj in kinds(objects, "ClusterRole") + kinds(objects, "Role")
    }
    bound: set[tuple[str, str]] = set()
    grants: dict[str, set[Grant]] = {name: set() for name in PROCESSES}
    for binding in kinds(objects, "ClusterRoleBinding") + kinds(objects, "RoleBinding"):
        ref = (binding["roleRef"]["kind"], binding["roleRef"]["name"])
        if ref not in roles:
            problems.append(f"binding {binding['metadata']['name']} refers to missing {ref}")
            continue
        bound.add(ref)
        for subject in binding["subjects"]:
            account = (subject["kind"], subject.get("namespace"))
            if account != ("ServiceAccount", NAMESPACE) or subject["name"] not in grants:
                problems.append(
                    f"binding {binding['metadata']['name']} binds {subject}; only the aiops "
                    f"ServiceAccounts {PROCESSES} may be bound"
                )
                continue
            for rule in roles[ref].get("rules", []):
                if rule.get("nonResourceURLs"):
                    problems.append(f"{ref[1]}: nonResourceURLs are not needed")
                if rule.get("resourceNames"):
                    problems.append(f"{ref[1]}: resourceNames are not used by this model")
                for group in rule.get("apiGroups", []):
                    for resource in rule.get("resources", []):
                        for verb in rule.get("verbs", []):
                            grants[subject["name"]].add((group, resource, verb))
    for ref in sorted(set(roles) - bound):
        problems.append(f"{ref[0]} {ref[1]} is not bound to anything; remove it")
    return grants, problems


def rbac_problems(objects: list[tuple[str, Obj]]) -> list[str]:
    grants, problems = granted(objects)
    for account in PROCESSES:
        has, needs = grants[account], NEEDS[account].grants
        for group, resource, verb in sorted(has):
            if "*" in (group, resource, verb):
                problems.append(f"{account}: wildcard in ({group!r}, {resource!r}, {verb!r})")
            if resource in FORBIDDEN_RESOURCES:
                problems.append(f"{account}: access to {resource} ({verb}) is forbidden")
            if verb in FORBIDDEN_VERBS:
                problems.append(f"{account}: verb {verb} on {resource} is forbidden")
        for group, resource, verb in sorted(has - needs):
            problems.append(
                f"{account}: grants {verb} on {group or 'core'}/{resource}, which its code never "
                "calls"
            )
        for grant in sorted(needs - has):
            group, resource, verb = grant
            why = "; ".join(sorted(NEEDS[account].why.get(grant, set())))
            problems.append(f"{account}: lacks {verb} on {group or 'core'}/{resource} ({why})")
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


def test_each_service_account_gets_exactly_what_its_code_calls() -> None:
    assert rbac_problems(load_objects()) == []


def test_the_derivation_sees_the_executor_the_agent_and_the_mcp_tools() -> None:
    # Guards the derivation against silently finding nothing (a renamed module, a new layout).
    worker, mcp = NEEDS["aiops-worker"].grants, NEEDS["aiops-mcp"].grants
    assert {
        ("apps", "deployments", "patch"),  # rollout restart and undo
        ("apps", "deployments/scale", "patch"),  # scale
        ("", "pods/eviction", "create"),  # drain
        ("", "nodes", "patch"),  # cordon
        ("policy", "poddisruptionbudgets", "list"),  # observe_target
        ("", "pods/log", "get"),  # the agent's log reading
    } <= worker
    assert all(verb in {"get", "list"} for _, _, verb in mcp), "the MCP server only reads"
    tools = {t.name: t for t in mcp_tools()}
    assert {"describe_workload", "get_events", "get_pod_logs", "list_playbooks"} <= set(tools)
    assert tools["get_pod_logs"].reader_methods == {"pod_logs"}
    assert reader_calls()["pod_logs"] == {("", "pods/log", "get")}
    assert "playbooks_dir" in tools["list_playbooks"].files
    assert not NEEDS["aiops-webhook"].grants and not NEEDS["aiops-slack"].grants


@pytest.mark.parametrize(
    ("role", "rule", "expected"),
    [
        (
            "aiops-read",
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
            "aiops-worker: access to secrets (get) is forbidden",
        ),
        (
            "aiops-read",
            {"apiGroups": ["*"], "resources": ["pods"], "verbs": ["get"]},
            "aiops-worker: wildcard in ('*', 'pods', 'get')",
        ),
        (
            "aiops-read",
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["watch"]},
            "aiops-worker: grants watch on core/pods, which its code never calls",
        ),
        (
            "aiops-remediate-workloads",
            {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["update"]},
            "aiops-worker: grants update on apps/deployments, which its code never calls",
        ),
        (
            "aiops-mcp-read",
            {"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]},
            "aiops-mcp: grants list on core/nodes, which its code never calls",
        ),
        (
            "aiops-remediate-nodes",
            {
                "apiGroups": ["rbac.authorization.k8s.io"],
                "resources": ["clusterroles"],
                "verbs": ["escalate"],
            },
            "aiops-worker: verb escalate on clusterroles is forbidden",
        ),
    ],
)
def test_rbac_check_refuses_extra_or_dangerous_grants(role: str, rule: Obj, expected: str) -> None:
    objects = copy.deepcopy(load_objects())
    rules_of(objects, role).append(rule)
    assert expected in rbac_problems(objects)


@pytest.mark.parametrize(
    ("role", "resource", "verb", "expected"),
    [
        ("aiops-remediate-nodes", "pods/eviction", "create", "aiops-worker: lacks create on "),
        ("aiops-mcp-read", "pods/log", "get", "aiops-mcp: lacks get on core/pods/log (MCP tool "),
    ],
)
def test_rbac_check_notices_a_missing_verb(
    role: str, resource: str, verb: str, expected: str
) -> None:
    objects = copy.deepcopy(load_objects())
    for rule in rules_of(objects, role):
        if resource in rule["resources"]:
            rule["verbs"] = [v for v in rule["verbs"] if v != verb]
    assert any(p.startswith(expected) for p in rbac_problems(objects)), rbac_problems(objects)


@pytest.mark.parametrize("name", PROCESSES)
def test_only_processes_that_call_the_api_get_a_token(name: str) -> None:
    objects = load_objects()
    account = by_name(objects, "ServiceAccount", name)
    spec = by_name(objects, "Deployment", name)["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == name
    needs_token = bool(NEEDS[name].grants)
    assert account["automountServiceAccountToken"] is needs_token
    assert spec["automountServiceAccountToken"] is needs_token


@pytest.mark.parametrize("name", PROCESSES)
def test_each_process_mounts_exactly_the_files_it_reads(name: str) -> None:
    settings = read_env_file(CONFIG / "settings.env")
    dirs = {
        "playbooks_dir": (settings["AIOPS_PLAYBOOKS_DIR"], "aiops-playbooks"),
        "policies_dir": (settings["AIOPS_POLICIES_DIR"], "aiops-policies"),
        "state_dir": (settings["AIOPS_STATE_DIR"], None),
    }
    spec = by_name(load_objects(), "Deployment", name)["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in spec["containers"][0]["volumeMounts"]}
    for field, (path, config_map) in dirs.items():
        if field in NEEDS[name].files:
            assert path in mounts, f"{name} reads {field} ({path}) but nothing is mounted there"
            if config_map:
                assert mounts[path]["configMap"]["name"] == config_map, name
        else:
            assert path not in mounts, f"{name} never reads {field}, yet {path} is mounted"


DECISION_KEYS = "aiops-decision-keys"
KEY_FILES = {"mcp_key": "mcp.key", "slack_key": "slack.key"}  # setting -> key in the Secret


@pytest.mark.parametrize("name", PROCESSES)
def test_each_front_door_mounts_only_its_own_decision_key(name: str) -> None:
    # A pod that could read another front door's key could vouch for anyone on its channel.
    spec = by_name(load_objects(), "Deployment", name)["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    container = spec["containers"][0]
    mounted: dict[str, str] = {}  # key in the Secret -> file in the pod
    for mount in container["volumeMounts"]:
        secret = volumes[mount["name"]].get("secret", {})
        if secret.get("secretName") != DECISION_KEYS:
            continue
        assert "items" in secret, f"{name} mounts every decision key; list its own under items"
        assert secret.get("defaultMode", 0o644) & 0o007 == 0, f"{name}: keys readable by others"
        for item in secret["items"]:
            mounted[item["key"]] = f"{mount['mountPath']}/{item['path']}"
    wanted = NEEDS[name].keys
    assert set(mounted) == {KEY_FILES[k] for k in wanted}, name
    env = {var["name"]: var.get("value") for var in container.get("env", [])}
    for key in wanted:
        setting = f"AIOPS_SIGNING__{key.upper()}"
        assert env.get(setting) == mounted[KEY_FILES[key]], f"{name}: {setting} not its key file"


@pytest.mark.parametrize("name", PROCESSES)
def test_every_process_has_probes_on_its_telemetry_endpoints(name: str) -> None:
    port = int(read_env_file(CONFIG / "settings.env")["AIOPS_TELEMETRY__PORT"])
    container = by_name(load_objects(), "Deployment", name)["spec"]["template"]["spec"][
        "containers"
    ][0]
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert named["telemetry"] == port
    for probe, path in [
        ("livenessProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
        ("startupProbe", "/healthz"),
    ]:
        assert container[probe]["httpGet"] == {"path": path, "port": "telemetry"}, (name, probe)


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
    assert len(specs) == len(PROCESSES)
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
    for name in PROCESSES:
        spec = by_name(objects, "Deployment", name)["spec"]["template"]["spec"]
        container = spec["containers"][0]
        argv = [*container.get("command", []), *container.get("args", [])]
        assert argv[0] == "aiops", name
        commands[name] = parser.parse_args(argv[1:])
    worker = commands["aiops-worker"]
    # Detection in the cluster: the worker starts the loop (idempotent per namespace).
    assert (worker.command, worker.start_detection) == ("worker", True)
    slack = commands["aiops-slack"]
    assert (slack.command, slack.slack_command, slack.mode) == ("slack", "serve", "socket")
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


def _overlay(tmp_path: Path, **fields: Any) -> Path:
    overlay = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        # kustomize takes only relative paths to other kustomizations.
        "resources": [os.path.relpath(MANIFESTS, tmp_path)],
        **fields,
    }
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(overlay))
    return tmp_path


def test_the_slack_http_component_serves_http_behind_a_service(tmp_path: Path) -> None:
    folder = _overlay(tmp_path, components=[os.path.relpath(MANIFESTS / "slack-http", tmp_path)])
    rendered = _build(folder)
    for _, obj in rendered:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    container = by_name(rendered, "Deployment", "aiops-slack")["spec"]["template"]["spec"][
        "containers"
    ][0]
    args = build_parser().parse_args(container["args"])
    assert (args.mode, args.host, args.port) == ("http", "0.0.0.0", 3000)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    service = by_name(rendered, "Service", "aiops-slack")
    assert ports[service["spec"]["ports"][0]["targetPort"]] == 3000
    assert rbac_problems(rendered) == []


def test_the_monitoring_component_renders_the_pod_monitor_and_rules(tmp_path: Path) -> None:
    folder = _overlay(tmp_path, components=[os.path.relpath(MANIFESTS / "monitoring", tmp_path)])
    rendered = _build(folder)
    monitor = by_name(rendered, "PodMonitor", "aiops")
    endpoint = monitor["spec"]["podMetricsEndpoints"][0]
    assert (endpoint["port"], endpoint["path"]) == ("telemetry", "/metrics")
    for _, spec in pod_specs(rendered):
        assert "telemetry" in {p["name"] for p in spec["containers"][0]["ports"]}
    assert by_name(rendered, "PrometheusRule", "aiops")["spec"]["groups"]


def test_an_overlay_can_replace_the_image(tmp_path: Path) -> None:
    folder = _overlay(
        tmp_path,
        images=[{"name": IMAGE, "newName": "registry.example.com/aiops", "newTag": "9.9.9"}],
    )
    images = {c["image"] for _, spec in pod_specs(_build(folder)) for c in containers(spec)}
    assert images == {"registry.example.com/aiops:9.9.9"}
