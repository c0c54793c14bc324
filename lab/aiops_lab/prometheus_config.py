"""The lab's Prometheus: its configuration, and starting/stopping the distribution's binary
(Debian package prometheus 2.42) on 127.0.0.1.

The scrape job uses `honor_labels: true` because one lab endpoint stands in for many real
targets: node_exporter series carry their own `instance="node-a:9100"`. The target's own
instance label is pinned to a stable name so backfilled history and live scrapes are one series.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx
import yaml

DEFAULT_SCRAPE_INTERVAL = "1s"
DEFAULT_JOB = "boutique"
DEFAULT_INSTANCE = "aiops-lab"


class PrometheusError(RuntimeError):
    pass


def write_prometheus_config(
    path: str | Path,
    targets: list[str] | dict[str, str],
    *,
    scrape_interval: str = DEFAULT_SCRAPE_INTERVAL,
    job: str = DEFAULT_JOB,
    instance: str = DEFAULT_INSTANCE,
    evaluation_interval: str | None = None,
    extra_scrape_configs: list[dict[str, object]] | None = None,
    rule_files: list[str | Path] | None = None,
) -> Path:
    """Write prometheus.yml scraping the lab's /metrics.

    `targets` is a list of "127.0.0.1:PORT" for one job named `job`, or a mapping job -> target.
    The `instance` label is pinned to `instance` (not host:port) so that backfilled history,
    written with the same job and instance, continues as the same series whatever port the
    lab's exporter got. `rule_files` (optional) are loaded as Prometheus rule files (alerting
    rules evaluated every `evaluation_interval`)."""
    if not targets:
        raise ValueError("at least one scrape target is needed")
    jobs: dict[str, list[str]] = (
        {name: [t] for name, t in targets.items()}
        if isinstance(targets, dict)
        else {job: list(targets)}
    )
    scrape_configs: list[dict[str, object]] = [
        {
            "job_name": name,
            "honor_labels": True,
            "metrics_path": "/metrics",
            "static_configs": [{"targets": addresses}],
            "relabel_configs": [{"target_label": "instance", "replacement": instance}],
        }
        for name, addresses in jobs.items()
    ]
    cfg: dict[str, object] = {
        "global": {
            "scrape_interval": scrape_interval,
            "scrape_timeout": scrape_interval,
            "evaluation_interval": evaluation_interval or scrape_interval,
            "external_labels": {"cluster": "aiops-lab"},
        },
        "scrape_configs": [*scrape_configs, *(extra_scrape_configs or [])],
    }
    if rule_files:
        cfg["rule_files"] = [str(Path(f).resolve()) for f in rule_files]
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return p


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrometheusProcess:
    """A Prometheus server on 127.0.0.1; use as a context manager or call `stop()`."""

    def __init__(
        self,
        config: str | Path,
        data_dir: str | Path,
        port: int | None = None,
        binary: str | None = None,
        retention: str = "15d",
        log_file: str | Path | None = None,
    ) -> None:
        exe = binary or shutil.which("prometheus") or "/usr/bin/prometheus"
        if not Path(exe).exists():
            raise PrometheusError(
                f"prometheus binary not found ({exe}); install the Debian package prometheus"
            )
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = Path(data_dir)
        log = Path(log_file) if log_file else self.data_dir.parent / f"prometheus-{self.port}.log"
        self.log_path = log
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            [
                exe,
                f"--config.file={config}",
                f"--storage.tsdb.path={data_dir}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                f"--storage.tsdb.retention.time={retention}",
                "--web.enable-lifecycle",
                "--log.level=warn",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise PrometheusError(
                    f"prometheus exited with {self.proc.returncode}; see {self.log_path}"
                )
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise PrometheusError(f"prometheus not ready after {timeout:.0f}s; see {self.log_path}")

    def query(self, promql: str, at: float | None = None) -> list[dict[str, object]]:
        params: dict[str, str] = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        r = httpx.get(f"{self.url}/api/v1/query", params=params, timeout=10.0)
        body = r.json()
        if body.get("status") != "success":
            raise PrometheusError(f"query {promql!r} failed: {body.get('error')}")
        result: list[dict[str, object]] = body["data"]["result"]
        return result

    def wait_for_scrape(self, metric: str = "up", timeout: float = 30.0) -> None:
        """Poll until the first scrape has landed (discovery alone takes ~5 s)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise PrometheusError(f"prometheus exited; see {self.log_path}")
            try:
                if self.query(f"count({metric})"):
                    return
            except (httpx.HTTPError, PrometheusError):
                pass
            time.sleep(0.2)
        raise PrometheusError(f"no scrape of {metric} within {timeout:.0f}s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def __enter__(self) -> PrometheusProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
