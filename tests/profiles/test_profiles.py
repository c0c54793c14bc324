"""The metric profiles as files: what ships, what a user may write, and the errors that say
what is wrong where."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from aiops.domain.yamlsource import LoadError
from aiops.profiles import BUILTIN_DIR, assemble, builtin_assembly, load_profiles

REPO = Path(__file__).parents[2]
REQUEST_PROFILES = ["istio", "linkerd", "otel-semconv", "otel-spanmetrics", "ingress-nginx"]


def test_the_shipped_profiles_and_what_each_feeds() -> None:
    shipped = load_profiles()
    assert sorted(shipped.profiles) == sorted(["base", *REQUEST_PROFILES])
    for p in shipped.profiles.values():
        assert p.docs, f"{p.profile} says where its names come from"
        for parts in p.signals.values():
            for part in parts:
                assert part.needs
    signals = builtin_assembly().by_name()
    for name in ("request_rate", "error_ratio", "latency_p99"):
        assert signals[name].profiles == REQUEST_PROFILES
    for name in ("edge_request_rate", "edge_error_ratio", "edge_latency_p99"):
        assert signals[name].profiles == ["istio", "linkerd", "otel-spanmetrics"]
        assert not signals[name].detect
    assert signals["cpu_usage"].profiles == ["base"]
    assert signals["latency_p99"].unit == "s"
    assert signals["error_ratio"].combine == "max"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_every_part_renders_valid_promql(tmp_path: Path) -> None:
    rules = []
    for sig in builtin_assembly().signals:
        for filters in ({}, {"namespace": "shop"}):
            rules.append(sig.render(filters, "1m"))
            rules.append(sig.render(filters, "2m", guarded=False))
    path = tmp_path / "rules.yml"
    records = [{"record": f"aiops:s{i}", "expr": q} for i, q in enumerate(rules)]
    path.write_text(yaml.safe_dump({"groups": [{"name": "signals", "rules": records}]}))
    out = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_no_istio_metric_name_outside_the_istio_profile() -> None:
    """The product reads Istio's names from the Istio profile only: any other file that names
    one ties aiops to Istio again."""
    istio = re.compile(r"\bistio_[a-z_]+")
    files = [
        *(REPO / "aiops").rglob("*.py"),
        *(REPO / "workflows").rglob("*.py"),
        *(REPO / "aiops").rglob("*.yaml"),
        *(REPO / "playbooks").glob("*.yaml"),
        *(REPO / "policies").glob("*.yaml"),
    ]
    found = {
        str(f.relative_to(REPO)): sorted(set(istio.findall(f.read_text())))
        for f in files
        if f != BUILTIN_DIR / "istio.yaml" and istio.search(f.read_text())
    }
    assert found == {}
    assert istio.search((BUILTIN_DIR / "istio.yaml").read_text())


def write(folder: Path, text: str, name: str = "mine.yaml") -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


QUEUE = """\
profile: rabbitmq
description: RabbitMQ queues
docs: [https://www.rabbitmq.com/docs/prometheus]
signals:
  queue_depth:
    entity: namespace
    unit: messages
    direction: up
    description: Messages waiting per queue.
    needs: [rabbitmq_queue_messages]
    query: sum by (namespace) (rabbitmq_queue_messages{$filter})
"""


def test_a_user_profile_adds_a_signal_of_its_own(tmp_path: Path) -> None:
    folder = tmp_path / "profiles"
    write(folder, QUEUE)
    profiles = load_profiles([folder])
    assert "rabbitmq" in profiles.profiles
    live = assemble(
        profiles.vocabulary, profiles.profiles.values(), {"rabbitmq_queue_messages": frozenset()}
    )
    assert live.by_name()["queue_depth"].render({"namespace": "mq"}) == (
        'sum by (namespace) (rabbitmq_queue_messages{namespace="mq"})'
    )
    assert profiles.entities()["queue_depth"] == "namespace"


def test_a_user_profile_named_like_a_shipped_one_replaces_it(tmp_path: Path) -> None:
    folder = tmp_path / "profiles"
    text = (BUILTIN_DIR / "ingress-nginx.yaml").read_text()
    write(
        folder,
        text.replace("(service, namespace)", "(service, exported_namespace)").replace(
            "labels: {workload: service}",
            "labels: {workload: service, namespace: exported_namespace}",
        ),
        "ingress.yaml",
    )
    profiles = load_profiles([folder])
    (part,) = profiles.profiles["ingress-nginx"].signals["request_rate"]
    assert part.labels == {"workload": "service", "namespace": "exported_namespace"}
    assert profiles.sources["ingress-nginx"].endswith("ingress.yaml")


@pytest.mark.parametrize(
    ("edit", "line", "field", "reason"),
    [
        (("queue_depth:", "queue_dept h:"), None, "signals", "snake_case"),
        (
            ("    entity: namespace\n", ""),
            5,
            "signals.queue_depth.entity",
            "required field is missing",
        ),
        (
            (
                "    entity: namespace\n    unit: messages\n    direction: up\n"
                "    description: Messages waiting per queue.\n",
                "",
            ),
            5,
            "signals.queue_depth",
            "not in the vocabulary",
        ),
        (
            ("needs: [rabbitmq_queue_messages]", "needs: [rabbitmq_queues]"),
            5,
            "signals.queue_depth",
            "the query reads rabbitmq_queue_messages, which needs does not list",
        ),
        (("$filter})", "$filters})"), 11, "signals.queue_depth.query", "unknown placeholders"),
        (
            (
                "needs: [rabbitmq_queue_messages]",
                "needs: [rabbitmq_queue_messages]\n    labels: {pod: x}",
            ),
            11,
            "signals.queue_depth.labels",
            "labels maps 'pod', which namespace signals do not have",
        ),
        (
            ("    direction: up\n", "    direction: up\n    persists: down\n"),
            8,
            "signals.queue_depth.persists",
            "persists 'down' is not a bad direction of this signal",
        ),
        (
            ("    direction: up\n", "    direction: up\n    load: follows\n"),
            8,
            "signals.queue_depth.load",
            "load 'follows' needs a signal about a workload or pod",
        ),
        (
            ("    direction: up\n", "    direction: up\n    load: sometimes\n"),
            8,
            "signals.queue_depth.load",
            "'measures' or 'follows'",
        ),
        (  # the pass's shared form reads what `needs` lists too
            ("{$filter})\n", "{$filter})\n    shared: {query: 'sum(rabbitmq_other{$filter})'}\n"),
            5,
            "signals.queue_depth",
            "the shared query reads rabbitmq_other, which needs does not list",
        ),
        (
            ("{$filter})\n", "{$filter})\n    shared: {query: x, worst: reporter}\n"),
            11,
            "signals.queue_depth.shared.worst",
            "unknown field: remove it or check its spelling",
        ),
    ],
)
def test_a_bad_profile_names_its_file_line_and_field(
    tmp_path: Path, edit: tuple[str, str], line: int | None, field: str, reason: str
) -> None:
    folder = tmp_path / "profiles"
    path = write(folder, QUEUE.replace(*edit))
    with pytest.raises(LoadError) as info:
        load_profiles([folder])
    (err,) = info.value.errors
    assert err.file == str(path)
    assert err.field.startswith(field) and reason in err.reason, err
    if line is not None:
        assert err.line is not None and err.line >= line


def test_a_profile_cannot_change_what_a_vocabulary_signal_means(tmp_path: Path) -> None:
    folder = tmp_path / "profiles"
    text = """\
profile: mine
description: my requests
signals:
  error_ratio:
    unit: percent
    needs: [my_requests_total]
    query: sum by (namespace, workload) (rate(my_requests_total{$filter}[$window]))
"""
    write(folder, text)
    with pytest.raises(LoadError, match="defined by the vocabulary: a profile implements it"):
        load_profiles([folder])


def test_the_assembly_says_which_family_or_label_a_signal_wants() -> None:
    shipped = load_profiles()
    # OpenTelemetry's server metrics without the promoted resource attributes
    bare = assemble(
        shipped.vocabulary,
        shipped.profiles.values(),
        {"rpc_server_duration_milliseconds": frozenset({"service_name"})},
    )
    assert "error_ratio" not in bare.by_name()
    why = bare.why_not("error_ratio")
    assert (
        "otel-semconv needs http_server_request_duration_seconds{service_name,k8s_namespace_name}"
        in why
    )
    assert "rpc_server_duration_milliseconds{service_name,k8s_namespace_name}" in why
    assert "istio needs istio_requests_total" in why
    full = assemble(
        shipped.vocabulary,
        shipped.profiles.values(),
        {"rpc_server_duration_milliseconds": frozenset({"service_name", "k8s_namespace_name"})},
    )
    assert full.by_name()["error_ratio"].profiles == ["otel-semconv"]
    assert full.profiles_found == ["otel-semconv"]
