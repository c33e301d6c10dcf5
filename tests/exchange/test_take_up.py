"""Take-up (摘牌) on the live exchange: a member takes up part or all of one named listing at
its price; the fill settles exactly as a matched fill (one batch, serial blocks move); the
taking order never rests; the pre-trade checks refuse with codes and change nothing; a retry
returns the first answer; market data counts it as an online listing trade; on SQLite and
PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from carbonbook.db.schema import exchange_orders, exchange_trades
from carbonbook.exchange.errors import OrderRefusedError, UnknownOrderError
from carbonbook.exchange.markets import Market
from carbonbook.exchange.service import Exchange
from carbonbook.market_data.service import MarketData
from carbonbook.registry.service import Registry
from tests.exchange import test_live as live
from tests.exchange.test_live import CLOSED, Clock, _balance, place

clock = live.clock
exchange = live.exchange
NEXT_DAY = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


def take(x: Exchange, owner: str, listing_id: int, qty: int, key: str):
    return x.take_up(owner=owner, listing_id=listing_id, quantity=qty, key=key, by=owner)


def test_a_buyer_takes_up_part_of_a_listing_at_its_price(exchange: Exchange):
    ask = place(exchange, "ent:bus", "sell", 6_900, 1_000, "s1").order
    place(exchange, "ent:bus", "sell", 6_800, 100, "s2")  # a better price: not the one taken
    taken = take(exchange, "member:fund", ask.id, 300, "t1")
    (trade,) = taken.trades
    assert (trade.price_fen, trade.quantity, trade.sell_order) == (6_900, 300, ask.id)
    assert (taken.order.mode, taken.order.takes, taken.order.side) == ("take", ask.id, "buy")
    assert (taken.order.state, taken.order.remaining) == ("filled", 0)
    assert _balance(exchange, "member:fund", "CNY") == (10_000_000 - 2_070_000, 0)
    assert _balance(exchange, "member:fund", "CEA-2024") == (300, 0)
    assert _balance(exchange, "ent:bus", "CNY") == (2_070_000, 0)
    assert _balance(exchange, "ent:bus", "CEA-2024") == (4_700, 800)  # 700 + 100 still listed
    assert _balance(exchange, "exchange:clearing", "CNY")[0] == 0
    assert _balance(exchange, "exchange:clearing", "CEA-2024")[0] == 0
    assert exchange.depth("national", "CEA-2024")["asks"] == [[6_800, 100], [6_900, 700]]
    listing = next(o for o in exchange.orders("ent:bus") if o.id == ask.id)
    assert (listing.state, listing.remaining) == ("live", 700)
    with exchange.engine.connect() as conn:
        row = conn.execute(sa.select(exchange_trades).where(exchange_trades.c.id == trade.id)).one()
    assert (row.mode, row.aggressor) == ("listing", "buy")
    holdings = {h.asset: h for h in Registry(exchange.engine).holdings("member:fund")}
    assert holdings["CEA-2024"].serials[0].endswith("-000000001-000000300")
    assert Registry(exchange.engine).verify() == []


def test_taking_up_all_of_a_listing_fills_it(exchange: Exchange):
    ask = place(exchange, "ent:bus", "sell", 6_800, 100, "s1").order
    take(exchange, "member:fund", ask.id, 100, "t1")
    assert next(o for o in exchange.orders("ent:bus") if o.id == ask.id).state == "filled"
    assert exchange.depth("national", "CEA-2024")["asks"] == []
    assert _balance(exchange, "ent:bus", "CEA-2024") == (4_900, 0)


def test_a_seller_takes_up_a_bid_and_the_bid_keeps_the_rest_reserved(exchange: Exchange):
    bid = place(exchange, "ent:steel", "buy", 7_000, 300, "b1").order
    taken = take(exchange, "ent:bus", bid.id, 100, "t1")
    assert (taken.order.side, taken.trades[0].price_fen) == ("sell", 7_000)
    assert taken.trades[0].buyer == "ent:steel"
    assert _balance(exchange, "ent:steel", "CNY") == (50_000_000 - 700_000, 1_400_000)
    assert _balance(exchange, "ent:steel", "CEA-2024") == (100, 0)
    assert _balance(exchange, "ent:bus", "CEA-2024") == (4_900, 0)
    assert _balance(exchange, "ent:bus", "CNY") == (700_000, 0)
    assert exchange.depth("national", "CEA-2024")["bids"] == [[7_000, 200]]
    assert Registry(exchange.engine).verify() == []


def test_refusals_have_codes_and_change_nothing(exchange: Exchange, clock: Clock):
    ask = place(exchange, "ent:bus", "sell", 6_800, 2_000, "s1").order
    gone = place(exchange, "ent:bus", "sell", 6_800, 10, "s2").order
    exchange.cancel(owner="ent:bus", order_id=gone.id, by="bus")
    cases = [
        ("ent:bus", ask.id, 10, "SELF_TRADE"),
        ("member:fund", ask.id, 2_001, "EXCEEDS_LISTING"),
        ("member:fund", ask.id, 0, "BAD_LOT"),
        ("member:fund", ask.id, 1_500, "INSUFFICIENT_FUNDS"),  # 102,000 yuan; 100,000 held
        ("member:fund", gone.id, 10, "NOT_LIVE"),
    ]
    for owner, listing_id, qty, code in cases:
        with pytest.raises(OrderRefusedError) as refused:
            take(exchange, owner, listing_id, qty, f"k-{code}")
        assert refused.value.code == code
        assert refused.value.message_zh
    with pytest.raises(UnknownOrderError):
        take(exchange, "member:fund", 10**12, 10, "k-unknown")
    clock.now = CLOSED
    with pytest.raises(OrderRefusedError) as closed:
        take(exchange, "member:fund", ask.id, 10, "k-closed")
    assert closed.value.code == "MARKET_CLOSED"
    assert [o.id for o in exchange.orders("member:fund")] == []
    assert _balance(exchange, "member:fund", "CNY") == (10_000_000, 0)
    assert _balance(exchange, "ent:bus", "CEA-2024") == (5_000, 2_000)
    clock.now = live.OPEN
    assert exchange.depth("national", "CEA-2024")["asks"] == [[6_800, 2_000]]


def test_units_bought_today_cannot_be_sold_by_taking_up_a_bid(exchange: Exchange):
    ask = place(exchange, "ent:bus", "sell", 6_800, 100, "s1").order
    take(exchange, "member:fund", ask.id, 100, "t1")
    bid = place(exchange, "ent:steel", "buy", 6_900, 50, "b1").order
    with pytest.raises(OrderRefusedError) as refused:
        take(exchange, "member:fund", bid.id, 50, "t2")
    assert refused.value.code == "INSUFFICIENT_UNITS"
    assert _balance(exchange, "member:fund", "CEA-2024") == (100, 0)


def test_a_retry_with_the_same_key_takes_up_once(exchange: Exchange):
    ask = place(exchange, "ent:bus", "sell", 6_800, 100, "s1").order
    first = take(exchange, "member:fund", ask.id, 40, "t1")
    again = take(exchange, "member:fund", ask.id, 40, "t1")
    assert again.replayed
    assert (again.order.id, [t.id for t in again.trades]) == (
        first.order.id,
        [t.id for t in first.trades],
    )
    assert _balance(exchange, "member:fund", "CEA-2024") == (40, 0)
    for listing_id, qty in ((ask.id, 41), (ask.id + 1, 40)):
        with pytest.raises(OrderRefusedError) as reused:
            take(exchange, "member:fund", listing_id, qty, "t1")
        assert reused.value.code == "KEY_REUSED"
    place(exchange, "member:fund", "buy", 6_500, 1, "b1")
    with pytest.raises(OrderRefusedError) as reused:  # a listing order's key
        take(exchange, "member:fund", ask.id, 1, "b1")
    assert reused.value.code == "KEY_REUSED"
    with pytest.raises(OrderRefusedError) as reused:  # and the other way round
        place(exchange, "member:fund", "buy", 6_800, 40, "t1")
    assert reused.value.code == "KEY_REUSED"


def test_a_take_up_is_an_online_listing_trade_in_market_data(exchange: Exchange, clock: Clock):
    ask = place(exchange, "ent:bus", "sell", 7_200, 100, "s1").order
    take(exchange, "member:fund", ask.id, 100, "t1")
    stats = MarketData(exchange.engine).statistics(
        "national", "CEA-2024", open_rule="first_trade", reference_fen=6_800
    )
    (day,) = stats["days"]
    assert (day["deals"], day["listings"], day["close_fen"]) == (1, 1, 7_200)
    assert stats["cumulative"]["volume_t"] == {"listing": 100, "block": 0}
    clock.now = NEXT_DAY  # the next day's band is around it, as around any online trade
    assert exchange.depth("national", "CEA-2024")["reference_fen"] == 7_200


def test_the_admission_gate_is_asked(engine: sa.Engine, exchange: Exchange, clock: Clock):
    asked: list[str] = []

    def admit(conn: sa.Connection, owner: str, rules: Market) -> None:
        del conn
        asked.append(owner)
        if owner == "member:fund":
            raise OrderRefusedError("NO_TRADING_ACCOUNT", "no account", "没有交易账户")

    gated = Exchange(
        engine, exchange.ledger, settle=exchange.settle_batch, clock=clock, admit=admit
    )
    ask = place(gated, "ent:bus", "sell", 6_800, 100, "s1").order
    with pytest.raises(OrderRefusedError) as refused:
        take(gated, "member:fund", ask.id, 10, "t1")
    assert refused.value.code == "NO_TRADING_ACCOUNT"
    assert asked == ["ent:bus", "member:fund"]
    assert take(gated, "ent:steel", ask.id, 10, "t2").order.state == "filled"
    assert gated.depth("national", "CEA-2024")["asks"] == [[6_800, 90]]


def test_listings_are_shown_in_price_time_priority(exchange: Exchange):
    a = place(exchange, "ent:bus", "sell", 6_900, 10, "s1").order
    b = place(exchange, "ent:bus", "sell", 6_800, 20, "s2").order
    c = place(exchange, "ent:bus", "sell", 6_800, 30, "s3").order
    d = place(exchange, "member:fund", "buy", 6_500, 5, "b1").order
    e = place(exchange, "member:fund", "buy", 6_600, 5, "b2").order
    shown = exchange.listings("national", "CEA-2024")
    assert [x.id for x in shown] == [b.id, c.id, a.id, e.id, d.id]
    assert shown[0].to_document("member:fund") == {
        "id": b.id,
        "side": "sell",
        "price_fen": 6_800,
        "remaining": 20,
        "mine": False,
    }


def test_a_take_up_order_never_rests_in_a_rebuilt_book(
    exchange: Exchange, engine: sa.Engine, clock: Clock
):
    ask = place(exchange, "ent:bus", "sell", 6_800, 100, "s1").order
    take(exchange, "member:fund", ask.id, 60, "t1")
    fresh = Exchange(engine, exchange.ledger, settle=exchange.settle_batch, clock=clock)
    assert fresh.depth("national", "CEA-2024")["asks"] == [[6_800, 40]]
    assert fresh.depth("national", "CEA-2024")["bids"] == []
    with engine.connect() as conn:
        live_rows = conn.execute(
            sa.select(exchange_orders.c.id).where(exchange_orders.c.state == "live")
        ).all()
    assert [r.id for r in live_rows] == [ask.id]
