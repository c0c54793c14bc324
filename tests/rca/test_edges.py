"""Root causes from the service graph: callers and callees told apart on small synthetic shops.

Every test builds per-service metrics that barely move (as a network fault leaves them) next to
edges whose two sides tell the story, and checks what an SRE would read in the ranking.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from test_rank import ANOMALY, N_AFTER, N_BEFORE, STEP, T0, base_series, matrix, shift

from aiops.domain import FaultType
from aiops.rca import (
    EdgeSeries,
    RcaInputError,
    describe_edge,
    edge_health,
    rank,
    summarise,
    to_hypotheses,
)

# frontend calls everyone; checkout calls cart, payment, shipping, email.
GRAPH = [
    ("frontend", "cart"),
    ("frontend", "payment"),
    ("frontend", "shipping"),
    ("frontend", "email"),
    ("cart", "payment"),
    ("cart", "shipping"),
    ("cart", "email"),
]
SERVER_MS = {"cart": 2.0, "payment": 0.3, "shipping": 0.5, "email": 0.5}
NETWORK_MS = 5.0


def edges(
    *,
    client_extra_ms: dict[tuple[str, str], float] | None = None,
    server_extra_ms: dict[str, float] | None = None,
    client_errors: dict[tuple[str, str], float] | None = None,
    seed: int = 0,
    noise: float = 0.03,
) -> list[EdgeSeries]:
    """The graph's edges at the metrics' step, 3 % noise unless told; extra latency or
    caller-only errors from the anomaly time on."""
    rng = np.random.default_rng(seed)
    n = N_BEFORE + N_AFTER
    times = T0 + STEP * np.arange(n)
    after = np.arange(n) >= N_BEFORE
    out = []
    for client, server in GRAPH:
        base_server = SERVER_MS[server] + (server_extra_ms or {}).get(server, 0.0) * after
        server_ms = base_server * (1 + noise * rng.standard_normal(n))
        extra = (client_extra_ms or {}).get((client, server), 0.0) * after
        client_ms = server_ms + NETWORK_MS * (1 + noise * rng.standard_normal(n)) + extra
        errors = (client_errors or {}).get((client, server), 0.0) * after
        out.append(
            EdgeSeries(
                client=client,
                server=server,
                times=times,
                calls=np.full(n, 100.0),
                client_latency=client_ms / 1000,
                server_latency=server_ms / 1000,
                client_errors=errors,
                server_errors=np.zeros(n),
            )
        )
    return out


def quiet_matrix(seed: int = 0):  # type: ignore[no-untyped-def]
    times, series = base_series(seed)
    return times, series


def test_network_delay_on_a_callee_ranks_it_first_with_the_edges_that_show_it() -> None:
    times, series = quiet_matrix(1)
    # Its own metrics stay within noise; every caller waits 200 ms more, it spends no more.
    delayed = {("frontend", "payment"): 200.0, ("cart", "payment"): 200.0}
    # Its callers' latency rises too (they wait on it): without the edges they look guiltier.
    shift(series, "frontend_latency_p90", 1.6)
    shift(series, "cart_latency_p90", 1.5)
    without = rank(matrix(times, series), ANOMALY, call_graph=GRAPH)
    assert without.ranked[0].service != "payment"

    ranking = rank(matrix(times, series), ANOMALY, edges=edges(client_extra_ms=delayed))
    top = ranking.ranked[0]
    assert (top.service, top.fault) == ("payment", FaultType.NETWORK_LATENCY)
    assert {e.name for e in top.edges} == {"frontend → payment", "cart → payment"}
    shown = describe_edge(top.edges[0])
    assert shown.startswith(f"{top.edges[0].client} → payment: client p50 ")
    assert re.search(r"client p50 5\.\d+ ms → 20\d ms, server p50 flat at 0\.\d+ ms$", shown)
    # The callers are not blamed for the wait their callee caused.
    callers = [r for r in ranking.ranked if r.service in ("frontend", "cart")]
    assert all(e.share < 0.1 for r in callers for e in r.edges)
    hyp = to_hypotheses(ranking, namespace="shop", limit=1)[0]
    assert hyp.fault is FaultType.NETWORK_LATENCY
    assert hyp.evidence[0].kind == "topology"
    assert "payment: client p50" in hyp.evidence[0].summary
    assert "payment is the most likely root cause (network_latency fault" in summarise(ranking)


def test_a_hub_with_one_slow_callee_among_many_is_not_the_cause() -> None:
    times, series = quiet_matrix(2)
    # Only frontend → email departs (email's only other caller, cart, carries the same delay).
    delayed = {("frontend", "email"): 150.0, ("cart", "email"): 150.0}
    top = rank(matrix(times, series), ANOMALY, edges=edges(client_extra_ms=delayed)).ranked[0]
    assert top.service == "email"
    frontend_share = [e.share for e in top.edges]
    assert all(share > 0.9 for share in frontend_share), top.edges


def test_a_caller_whose_every_outbound_edge_slows_is_the_common_cause() -> None:
    times, series = quiet_matrix(3)
    # cart's CPU starves: its client spans of every call it makes stretch; the callees are fine.
    shift(series, "cart_cpu_usage", 6.0)
    slow = {("cart", s): 80.0 for s in ("payment", "shipping", "email")}
    ranking = rank(matrix(times, series), ANOMALY, edges=edges(client_extra_ms=slow))
    top = ranking.ranked[0]
    assert (top.service, top.fault) == ("cart", FaultType.CPU)
    assert {e.name for e in top.edges} == {f"cart → {s}" for s in ("payment", "shipping", "email")}
    # Each callee has another, healthy caller (frontend): none of them takes the blame.
    callees = {r.service: r for r in ranking.ranked if r.service in ("payment", "shipping")}
    assert all(e.share < 0.1 for r in callees.values() for e in r.edges)


def test_a_slow_callee_is_the_slow_one_and_explains_its_callers() -> None:
    times, series = quiet_matrix(4)
    # shipping spends 100 ms more on every call: both sides of its inbound edges rise.
    shift(series, "shipping_latency_p90", 3.0)
    shift(series, "frontend_latency_p90", 3.5)
    shift(series, "cart_latency_p90", 3.3)
    ranking = rank(matrix(times, series), ANOMALY, edges=edges(server_extra_ms={"shipping": 100.0}))
    top = ranking.ranked[0]
    assert (top.service, top.fault) == ("shipping", FaultType.LATENCY)
    # Its own time rose on both inbound edges: no network is blamed, the callee is the slow one.
    assert {(e.name, e.kind) for e in top.edges} == {
        ("frontend → shipping", "server"),
        ("cart → shipping", "server"),
    }
    assert all(r.fault is not FaultType.NETWORK_LATENCY for r in ranking.ranked[:3])


def test_a_callee_that_spent_no_more_time_does_not_explain_its_callers_latency() -> None:
    """A starved caller stretches its calls while its callees, busy with something else of their
    own, look departed too: the edges show they spent no more time on the caller's calls."""
    times, series = quiet_matrix(5)
    shift(series, "cart_latency_p90", 4.0)
    shift(series, "cart_cpu_usage", 1.5)
    # payment's own memory moves at the same time, for reasons of its own.
    shift(series, "payment_memory_usage", 1.3)
    slow = {("cart", s): 60.0 for s in ("payment", "shipping", "email")}
    graph_only = rank(matrix(times, series), ANOMALY, call_graph=GRAPH)
    assert any("errors/latency of cart discounted" in n for n in graph_only.notes)
    ranking = rank(matrix(times, series), ANOMALY, edges=edges(client_extra_ms=slow))
    assert not any("errors/latency of cart discounted" in n for n in ranking.notes)
    assert ranking.ranked[0].service == "cart"


def test_failures_only_callers_see_point_at_the_callee_network() -> None:
    times, series = quiet_matrix(6)
    lossy = {("frontend", "shipping"): 0.08, ("cart", "shipping"): 0.1}
    ranking = rank(matrix(times, series), ANOMALY, edges=edges(client_errors=lossy))
    top = ranking.ranked[0]
    assert (top.service, top.fault) == ("shipping", FaultType.NETWORK_LOSS)
    assert any(e.kind == "errors" for e in top.edges)
    assert "cart → shipping: caller saw 10.0% of calls fail, the callee's side 0.0%" in [
        describe_edge(e) for e in top.edges
    ]


def test_a_cpu_hog_still_ranks_by_its_own_metrics_with_healthy_edges() -> None:
    times, series = quiet_matrix(7)
    shift(series, "email_cpu_usage", 12.0)
    top = rank(matrix(times, series), ANOMALY, edges=edges()).ranked[0]
    assert (top.service, top.fault) == ("email", FaultType.CPU)
    assert top.edges == []


def test_edges_without_data_around_the_anomaly_change_nothing() -> None:
    times, series = quiet_matrix(8)
    shift(series, "shipping_cpu_usage", 8.0)
    before_only = [
        EdgeSeries(
            client=e.client,
            server=e.server,
            times=e.times[:N_BEFORE],
            calls=e.calls[:N_BEFORE],
            client_latency=e.client_latency[:N_BEFORE],
            server_latency=e.server_latency[:N_BEFORE],
        )
        for e in edges()
    ]
    plain = rank(matrix(times, series), ANOMALY, call_graph=GRAPH)
    with_edges = rank(matrix(times, series), ANOMALY, edges=before_only)
    assert with_edges.services == plain.services


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"calls": [1.0, 2.0]}, r"edge a → b: calls has 2 values for 3 times"),
        ({"times": [3.0, 2.0, 1.0]}, r"edge a → b: times must be strictly increasing"),
        ({"client": ""}, r"needs both a client and a server"),
    ],
)
def test_malformed_edges_say_what_is_wrong(kwargs: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {
        "client": "a",
        "server": "b",
        "times": [1.0, 2.0, 3.0],
        "calls": [1.0, 1.0, 1.0],
        "client_latency": [0.01, 0.01, 0.01],
        "server_latency": [0.001, 0.001, 0.001],
    }
    fields.update(kwargs)
    with pytest.raises(RcaInputError, match=message):
        EdgeSeries(**fields)  # type: ignore[arg-type]


def test_a_callee_its_caller_does_not_wait_for_explains_nothing() -> None:
    """cart hands work to email through a queue (it waits 0.2 ms, email spends 3 ms): when email
    departs at the same time as cart, cart's latency is still cart's own."""
    times, series = quiet_matrix(9)
    shift(series, "cart_latency_p90", 4.0)
    shift(series, "email_memory_usage", 1.4)
    graph_only = rank(matrix(times, series), ANOMALY, call_graph=GRAPH)
    assert any("its callee(s) email departed" in n for n in graph_only.notes), graph_only.notes
    queue = [
        EdgeSeries(
            client="cart",
            server="email",
            times=T0 + STEP * np.arange(N_BEFORE),
            calls=np.full(N_BEFORE, 10.0),
            client_latency=np.full(N_BEFORE, 0.0002),
            server_latency=np.full(N_BEFORE, 0.003),
        )
    ]
    ranking = rank(matrix(times, series), ANOMALY, call_graph=GRAPH, edges=queue)
    assert not any("its callee(s) email departed" in n for n in ranking.notes), ranking.notes
    assert ranking.ranked[0].service == "cart"


def test_an_end_outside_the_ranked_services_takes_no_blame() -> None:
    """The load generator calls frontend only: a slow frontend network shows on its one edge,
    whose other end (no metrics, nothing to act on) is no suspect."""
    times, series = quiet_matrix(10)
    n = N_BEFORE + N_AFTER
    client = np.where(np.arange(n) >= N_BEFORE, 0.3, 0.01)
    edge = EdgeSeries(
        client="loadgenerator",
        server="frontend",
        times=T0 + STEP * np.arange(n),
        calls=np.full(n, 50.0),
        client_latency=client * (1 + 0.02 * np.random.default_rng(1).standard_normal(n)),
        server_latency=np.full(n, 0.008),
    )
    ranking = rank(matrix(times, series), ANOMALY, edges=[edge])
    assert (ranking.ranked[0].service, ranking.ranked[0].fault) == (
        "frontend",
        FaultType.NETWORK_LATENCY,
    )
    assert "loadgenerator" not in ranking.services


def test_edge_health_says_what_changed_on_each_edge() -> None:
    lossy = {("cart", "shipping"): 0.1}
    slow = {("frontend", "payment"): 200.0}
    health = {
        (h.client, h.server): h
        for h in edge_health(
            edges(client_extra_ms=slow, client_errors=lossy, server_extra_ms={"email": 80.0}),
            ANOMALY,
            window_s=300,
            level_s=120,
        )
    }
    assert health[("frontend", "payment")].verdict == "slow network"
    assert health[("frontend", "payment")].client_now > 0.2
    assert health[("cart", "shipping")].verdict == "calls lost"
    assert health[("frontend", "email")].verdict == "slower"
    assert health[("frontend", "cart")].verdict == "ok"


def test_a_graph_steadier_than_latency_can_be_read_calls_no_wobble_slower() -> None:
    """Seen in CI (the lab's simulated shop, whose mean latencies hold to 1e-5): a 0.01 % rise on
    checkoutservice -> shippingservice stood more than 3 of the graph's noise units up and read
    "slower". A change smaller than latency can be read is no change; a real one still shows."""
    steady = edges(noise=1e-6, server_extra_ms={"shipping": 0.0005, "email": 0.5})
    health = {
        (h.client, h.server): h for h in edge_health(steady, ANOMALY, window_s=300, level_s=120)
    }
    assert health[("frontend", "shipping")].verdict == "ok"
    assert health[("cart", "shipping")].verdict == "ok"
    assert health[("frontend", "email")].verdict == "slower"  # 0.5 ms on 5.5 ms: 9 %


def test_a_cpu_hog_whose_callers_wait_on_it_is_still_a_cpu_fault() -> None:
    """Seen live (catalog-cpu-hog): the saturated service's time on every inbound edge soars,
    far beyond its CPU's standing; the callers' view must not set the bar its CPU is held to."""
    times, series = quiet_matrix(11)
    shift(series, "email_cpu_usage", 1.5, rows=N_AFTER)
    shift(series, "email_latency_p90", 2.5, rows=N_AFTER)
    slow = edges(server_extra_ms={"email": 400.0}, seed=3)
    top = rank(matrix(times, series), ANOMALY, edges=slow).ranked[0]
    assert top.service == "email"
    assert any(e.kind == "server" for e in top.edges)
    assert top.fault is FaultType.CPU, top.evidence


def test_an_edge_departure_stands_no_higher_than_a_metric_departure_of_its_size() -> None:
    """Most services' edge pseudo-columns sit at zero, so on their own spread any departure
    would stand many times higher than a metric's; they stand in the metrics' unit."""
    times, series = quiet_matrix(12)
    shift(series, "cart_cpu_usage", 1.15, rows=N_AFTER)  # a metric departure ...
    # ... and an edge departure of about the same robust z (+1.5 ms on ~5.5 ms, 3 % noise).
    ranking = rank(
        matrix(times, series),
        ANOMALY,
        edges=edges(client_extra_ms={("frontend", "email"): 1.5, ("cart", "email"): 1.5}),
    )
    by = {r.service: r for r in ranking.ranked}
    cpu = next(e for e in by["cart"].evidence if e.metric == "cpu_usage")
    gap = next(e for e in by["email"].evidence if e.metric == "edge_gap")
    per_edge = max(e.score for e in by["email"].edges)
    assert 0.5 < per_edge / cpu.score < 2.0, (per_edge, cpu.score)
    # Two edges' worth of the same departure: the sum of their z doubles, its log grows by a
    # quarter or so; on the pseudo-columns' own near-zero spread it stood 2.7 times higher.
    assert gap.peer_score < 2 * cpu.peer_score, (gap.peer_score, cpu.peer_score)
