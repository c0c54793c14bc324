"""The running shop's loopback control API, as `aiops lab inject/status` would use it."""

from __future__ import annotations

import time

import httpx
from aiops_lab.eval.lab_eval import operated_by
from aiops_lab.scenario import SCENARIO_DIR
from aiops_lab.sim.service import ShopService

from tests.lab.fake_cluster import FakeCluster


def test_status_scenario_and_clear_over_http() -> None:
    cluster = FakeCluster(at=time.time())
    service = ShopService(cluster, seed=1, tick=0.1).start()
    base = f"http://127.0.0.1:{service.port}"
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not service.shop.status()[0].rps_in:
            time.sleep(0.05)
        status = httpx.get(f"{base}/lab/status", timeout=5).json()
        front = next(s for s in status["services"] if s["name"] == "frontend")
        assert front["rps_in"] > 0
        assert status["scenario"] is None

        bad = httpx.post(f"{base}/lab/scenario", content=b"name: x\nduration: soon\n", timeout=5)
        assert bad.status_code == 400
        assert "duration: 'soon' is not a duration" in bad.json()["error"]

        text = (SCENARIO_DIR / "catalog-latency.yaml").read_bytes()
        text = text.replace(b"warmup: 90s", b"warmup: 0s")
        ok = httpx.post(f"{base}/lab/scenario", content=text, timeout=5)
        assert ok.status_code == 200
        assert ok.json()["name"] == "catalog-latency"
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not service.shop.faults:
            time.sleep(0.05)
        status = httpx.get(f"{base}/lab/status", timeout=5).json()
        assert status["scenario"]["expect"]["playbook"] == "escalate"
        assert operated_by(status) == set()  # no everyday operation in this scenario
        assert [f["kind"] for f in status["faults"]] == ["latency"]

        assert httpx.post(f"{base}/lab/clear", timeout=5).status_code == 200
        assert httpx.get(f"{base}/lab/status", timeout=5).json()["faults"] == []
        assert "istio_requests_total" in httpx.get(service.metrics_url, timeout=5).text
    finally:
        service.stop()
