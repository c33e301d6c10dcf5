"""Markets as data: the national, CCER, practice and pilot markets with their rules, a
holiday calendar every market but the practice one observes, and instruments the registry
knows."""

from __future__ import annotations

from datetime import UTC, datetime

from carbonbook.exchange.markets import load_markets, market
from carbonbook.registry.rules import load_rules

NATIONAL_DAY_10AM = datetime(2026, 10, 1, 2, 0, tzinfo=UTC)  # Thursday, 10:00 in Shanghai
ORDINARY_TUESDAY_10AM = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


def test_the_pilot_markets_are_there_with_what_the_reference_says():
    markets = load_markets()
    assert {"national", "ccer", "beijing", "tianjin", "shanghai", "shenzhen", "hubei"} <= set(
        markets
    )
    assert market("tianjin").open_rule == "previous_online_vwap"  # the source article
    assert market("national").open_rule == "first_trade"
    assert str(market("shanghai").listing_band) == "0.10"  # cut from 30 % in 2015
    assert market("hubei").tick_fen == 1
    assert not any(m.individuals for m in markets.values())
    assert all(m.source for m in markets.values())


def test_holidays_close_the_markets_but_not_the_practice_one():
    for market_id in ("national", "ccer", "beijing", "hubei"):
        assert market(market_id).is_open(ORDINARY_TUESDAY_10AM)
        assert not market(market_id).is_open(NATIONAL_DAY_10AM)
    assert market("practice").is_open(NATIONAL_DAY_10AM)


def test_every_instrument_is_a_unit_type_the_registry_knows():
    known = set(load_rules().unit_types)
    for m in load_markets().values():
        if m.practice:  # practice units (模拟交易) are the exchange's, not the registry's
            assert m.cash != "CNY"
            assert all(i.endswith("-PRACTICE") for i in m.instruments)
            continue
        for instrument in m.instruments:
            code, _, vintage = instrument.rpartition("-")
            assert code in known, instrument
            assert vintage.isdigit(), instrument
