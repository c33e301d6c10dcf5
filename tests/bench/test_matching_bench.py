"""The matching benchmark's stream and agreement check, on a small stream (no timings)."""

from __future__ import annotations

import pytest

from bench import matching

N = 5_000


@pytest.fixture(scope="module")
def stream() -> matching.Stream:
    return matching.make_stream(N)


@pytest.fixture(scope="module")
def ours(stream: matching.Stream) -> matching.Run:
    return matching.replay("ours", stream)


def test_the_stream_is_deterministic_and_mixed(stream: matching.Stream):
    again = matching.make_stream(N)
    assert again == stream
    assert len(stream) == N
    shares = {k: stream.count(k) / N for k in (matching.NEW, matching.CANCEL, matching.CROSS)}
    assert 0.6 < shares[matching.NEW] < 0.8
    assert 0.1 < shares[matching.CANCEL] < 0.3
    assert 0.05 < shares[matching.CROSS] < 0.15
    assert all(matching.BAND_LO <= p <= matching.BAND_HI for p in stream.prices)
    assert all(1 <= q <= matching.MAX_QTY for q in stream.qtys)


def test_ours_trades(ours: matching.Run):
    assert ours.fills
    assert ours.traded
    assert ours.traded > 0


@pytest.mark.parametrize(
    ("key", "module"),
    [
        ("akhil4n", "orderbook"),
        ("cython", "cython_orderbook"),
        ("liquibook", "liquibook"),
        ("liquibook-bare", "liquibook"),
    ],
)
@pytest.mark.parametrize("latency", [False, True])
def test_every_peer_agrees_with_ours(
    key: str, module: str, latency: bool, stream: matching.Stream, ours: matching.Run
):
    pytest.importorskip(module)
    peer = matching.replay(key, stream, latency=latency)
    if peer.fills is not None:  # bare liquibook reports no fills: its depth is compared
        assert peer.traded == ours.traded
    assert matching.disagreement(ours, peer) is None


def test_a_difference_is_reported_where_it_is(ours: matching.Run):
    assert ours.fills
    changed = list(ours.fills)
    buy, sell, price, qty = changed[2]
    changed[2] = (buy, sell, price, qty + 1)
    peer = matching.Run("peer", 0.0, changed, ours.depth)
    assert matching.disagreement(ours, peer) == (
        f"fill #3: ours {ours.fills[2]}, peer {changed[2]}"
    )
