"""The `aiops` command as a person runs it: usage errors, settings errors, unreachable servers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.servers import PrometheusServer, free_port

AIOPS = str(Path(sys.executable).parent / "aiops")


def run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("AIOPS_")}
    full_env.update(env or {})
    return subprocess.run(
        [AIOPS, *args], capture_output=True, text=True, env=full_env, timeout=timeout, check=False
    )


def test_version() -> None:
    result = run("version")
    assert result.returncode == 0
    assert result.stdout.startswith("aiops 0.")


@pytest.mark.parametrize(
    "args", [["bogus"], ["doctor", "--nope"], [], ["mcp", "--transport", "carrier-pigeon"]]
)
def test_usage_errors_exit_2_with_usage(args: list[str]) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert "usage: aiops" in result.stderr
    assert "Traceback" not in result.stderr


def test_invalid_setting_is_named() -> None:
    result = run("config", "show", env={"AIOPS_PROMETHEUS__URL": "prometheus:9090"})
    assert result.returncode == 2
    assert "prometheus.url" in result.stderr
    assert "AIOPS_PROMETHEUS__URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_invalid_yaml_config_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "aiops.yaml"
    bad.write_text("temporal: [unclosed\n")
    result = run("--config", str(bad), "config", "show")
    assert result.returncode == 2
    assert str(bad) in result.stderr
    assert "not valid YAML" in result.stderr


def test_config_show_merges_yaml_and_env_and_masks_secrets(tmp_path: Path) -> None:
    config = tmp_path / "aiops.yaml"
    config.write_text(
        "temporal:\n  namespace: prod\n  api_key: super-secret-key\n"
        "slack:\n  bot_token: xoxb-very-secret\n"
        "mcp:\n  tokens: {tok-123456: alice}\n"
    )
    result = run(
        "config",
        "show",
        env={"AIOPS_CONFIG": str(config), "AIOPS_TEMPORAL__ADDRESS": "temporal.example:7233"},
    )
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["temporal"]["namespace"] == "prod"
    assert shown["temporal"]["address"] == "temporal.example:7233"  # env beats the file
    for secret in ("super-secret-key", "xoxb-very-secret", "tok-123456"):
        assert secret not in result.stdout
    assert shown["temporal"]["api_key"] == "********"
    assert list(shown["mcp"]["tokens"].values()) == ["alice"]


def test_unreachable_temporal_is_one_line_without_traceback() -> None:
    port = free_port()
    result = run("worker", env={"AIOPS_TEMPORAL__ADDRESS": f"127.0.0.1:{port}"})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"127.0.0.1:{port}" in lines[0]
    assert "unreachable" in lines[0]
    assert "AIOPS_TEMPORAL__ADDRESS" in lines[0]


def test_doctor_reports_each_component_and_fails_when_required_ones_are_down() -> None:
    temporal_port, prom_port = free_port(), free_port()
    result = run(
        "doctor",
        env={
            "AIOPS_TEMPORAL__ADDRESS": f"127.0.0.1:{temporal_port}",
            "AIOPS_PROMETHEUS__URL": f"http://127.0.0.1:{prom_port}",
            "HOME": "/nonexistent",
        },
    )
    assert result.returncode == 1
    lines = {line.split()[1]: line for line in result.stdout.strip().splitlines()}
    assert set(lines) == {"temporal", "prometheus", "kubernetes", "llm", "slack"}
    assert lines["temporal"].startswith("FAIL") and f":{temporal_port}" in lines["temporal"]
    assert lines["prometheus"].startswith("FAIL") and f":{prom_port}" in lines["prometheus"]
    assert "AIOPS_PROMETHEUS__URL" in lines["prometheus"]
    assert (
        lines["kubernetes"].startswith("FAIL")
        and "AIOPS_KUBERNETES__KUBECONFIG" in lines["kubernetes"]
    )
    assert lines["llm"].startswith("ok") and "not configured" in lines["llm"]
    assert "Traceback" not in result.stderr


def test_doctor_passes_temporal_and_prometheus_when_they_run(
    temporal_env: WorkflowEnvironment, prometheus: PrometheusServer, tmp_path: Path
) -> None:
    address = temporal_env.client.service_client.config.target_host
    result = run(
        "doctor",
        env={
            "AIOPS_TEMPORAL__ADDRESS": address,
            "AIOPS_PROMETHEUS__URL": prometheus.url,
            "AIOPS_LLM__BASE_URL": f"http://127.0.0.1:{free_port()}/v1",
            "HOME": str(tmp_path),
        },
    )
    lines = {line.split()[1]: line for line in result.stdout.strip().splitlines()}
    assert lines["temporal"].startswith("ok"), lines["temporal"]
    assert lines["prometheus"].startswith("ok") and "version 2." in lines["prometheus"]
    assert lines["llm"].startswith("FAIL") and "AIOPS_LLM__BASE_URL" in lines["llm"]
    assert result.returncode == 1  # kubernetes is still missing


def test_playbooks_validate_names_file_line_and_field(tmp_path: Path) -> None:
    assert run("playbooks", "validate", "playbooks").returncode == 0
    bad = tmp_path / "restart-thing.yaml"
    bad.write_text(
        "id: restart-thing\ndescription: x\nrisk: low\nmatches: {faults: [memory]}\n"
        "steps:\n  - action: k8s.reboot_everything\n    args: {}\n"
    )
    result = run("playbooks", "validate", str(tmp_path))
    assert result.returncode != 0
    assert f"{bad}:6" in result.stdout + result.stderr
    assert "k8s.reboot_everything" in result.stdout + result.stderr


def test_policy_explain_denies_protected_namespaces_with_reasons() -> None:
    result = run(
        "policy",
        "explain",
        "--policy",
        "policies",
        "--action",
        "k8s.scale",
        "--namespace",
        "kube-system",
        "--name",
        "coredns",
        "--replicas",
        "3",
        "--current-replicas",
        "2",
    )
    assert result.returncode == 1
    assert "DENIED" in result.stdout
    assert "'kube-system' is protected" in result.stdout


@pytest.mark.parametrize("command", ["worker", "dev"])
def test_daemon_refuses_to_start_with_an_invalid_or_missing_policy(
    tmp_path: Path, command: str
) -> None:
    (tmp_path / "default.yaml").write_text("kill_switch: false\nallow: not-a-list\n")
    result = run(
        command,
        env={"AIOPS_POLICIES_DIR": str(tmp_path), "AIOPS_STATE_DIR": str(tmp_path / "state")},
    )
    assert result.returncode == 1
    assert "refusing to start" in result.stderr
    assert f"{tmp_path / 'default.yaml'}:2" in result.stderr
    assert not (tmp_path / "state").exists(), "nothing started"
    missing = run(command, env={"AIOPS_POLICIES_DIR": str(tmp_path / "nope")})
    assert missing.returncode == 1
    assert "policy file not found" in missing.stderr


def test_misspelled_nested_setting_is_an_error_not_ignored() -> None:
    result = run("config", "show", env={"AIOPS_PROMETHEUS__URLL": "http://x:9090"})
    assert result.returncode == 2
    assert "prometheus.urll" in result.stderr


def test_mcp_http_refuses_a_public_address_without_tokens() -> None:
    result = run("mcp", "--transport", "http", "--host", "0.0.0.0", "--port", str(free_port()))
    assert result.returncode == 1
    assert "without credentials" in result.stderr
    assert "AIOPS_MCP__TOKENS" in result.stderr


def test_worker_refuses_to_start_with_an_unusable_kubeconfig(
    tmp_path: Path, temporal_env: WorkflowEnvironment
) -> None:
    address = temporal_env.client.service_client.config.target_host
    missing = tmp_path / "nope" / "kubeconfig"
    result = run(
        "worker",
        env={"AIOPS_TEMPORAL__ADDRESS": address, "AIOPS_KUBERNETES__KUBECONFIG": str(missing)},
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr, result.stderr
    error = result.stderr.strip().splitlines()[-1]  # after the "rules loaded" log line
    assert "refusing to start" in error
    assert str(missing) in error
    assert "AIOPS_KUBERNETES__KUBECONFIG" in error
