"""Metric families and their two renderings: Prometheus text (scraped live) and OpenMetrics with
timestamps (fed to `promtool tsdb create-blocks-from openmetrics` for backfill)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

Labels = tuple[tuple[str, str], ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


_label_cache: dict[Labels, str] = {}


def render_labels(labels: Labels) -> str:
    """`{a="1",b="2"}`; cached because the same label sets are rendered every scrape."""
    text = _label_cache.get(labels)
    if text is None:
        if len(_label_cache) > 200_000:  # pods come and go; do not grow without bound
            _label_cache.clear()
        text = "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels) + "}" if labels else ""
        _label_cache[labels] = text
    return text


def _number(v: float) -> str:
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return repr(float(v))


@dataclass
class Family:
    name: str
    type: str  # counter | gauge | histogram
    help: str
    # (sample name, labels, value); for histograms the sample names carry _bucket/_sum/_count.
    samples: list[tuple[str, Labels, float]] = field(default_factory=list)

    def add(self, labels: Labels, value: float, suffix: str = "") -> None:
        self.samples.append((self.name + suffix, labels, value))


def render_text(families: Sequence[Family]) -> str:
    """Prometheus text exposition format 0.0.4."""
    out: list[str] = []
    for f in families:
        out.append(f"# HELP {f.name} {f.help}")
        out.append(f"# TYPE {f.name} {f.type}")
        out.extend(f"{n}{render_labels(lb)} {_number(v)}" for n, lb, v in f.samples)
    out.append("")
    return "\n".join(out)


def render_openmetrics_samples(
    families: Iterable[Family], timestamp: float, extra: Labels = ()
) -> str:
    """Sample lines with a timestamp, no metadata: promtool accepts families interleaved across
    timestamps this way, which lets backfill stream one timestamp at a time. `extra` labels
    (job, instance: what Prometheus attaches when it scrapes) are added where a sample does not
    carry them itself (like honor_labels)."""
    ts = f" {timestamp:.3f}"
    out: list[str] = []
    cache = _series_cache.setdefault(extra, {})
    if len(cache) > 200_000:  # pods come and go; do not grow without bound
        cache.clear()
    for f in families:
        for n, lb, v in f.samples:
            series = cache.get((n, lb))
            if series is None:
                series = cache[(n, lb)] = n + render_labels(_merge(lb, extra)) + " "
            out.append(series + _number(v) + ts)
    out.append("")
    return "\n".join(out)


_series_cache: dict[Labels, dict[tuple[str, Labels], str]] = {}
_merge_cache: dict[tuple[Labels, Labels], Labels] = {}


def _merge(labels: Labels, extra: Labels) -> Labels:
    if not extra:
        return labels
    merged = _merge_cache.get((labels, extra))
    if merged is None:
        if len(_merge_cache) > 200_000:
            _merge_cache.clear()
        have = {k for k, _ in labels}
        merged = tuple(sorted((*labels, *(kv for kv in extra if kv[0] not in have))))
        _merge_cache[(labels, extra)] = merged
    return merged
