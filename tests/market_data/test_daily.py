"""Daily statistics: open by the market's rule, close = the day's online VWAP, volume and
turnover by mode, the close carried into the next day; cumulative shares."""

from __future__ import annotations

from carbonbook.market_data.daily import Tick, cumulative, daily

TICKS = [
    Tick("2026-11-24", 6_800, 100, "listing"),
    Tick("2026-11-24", 7_200, 100, "listing"),
    Tick("2026-11-24", 6_500, 100_000, "block"),
    Tick("2026-11-26", 7_100, 10, "listing"),
]


def test_a_day_by_the_national_rule():
    days = daily(TICKS, {"2026-11-24": 5}, open_rule="first_trade", reference_fen=6_800)
    first = days[0].to_document()
    assert first["open_fen"] == 6_800  # the first trade
    assert (first["high_fen"], first["low_fen"]) == (7_200, 6_800)  # online trades only
    assert first["close_fen"] == 7_000  # online VWAP: blocks are negotiated
    assert first["volume_t"] == {"listing": 200, "block": 100_000}
    assert first["turnover_fen"] == {"listing": 1_400_000, "block": 650_000_000}
    assert (first["deals"], first["listings"]) == (3, 5)
    assert first["vwap_fen"] == (1_400_000 + 650_000_000 + 50_100) // 100_200


def test_the_previous_online_average_opens_the_next_day_in_tianjin():
    days = daily(TICKS, {}, open_rule="previous_online_vwap", reference_fen=6_800)
    assert [d.day for d in days] == ["2026-11-24", "2026-11-26"]
    assert days[0].open_fen == 6_800  # the reference before the first day
    assert days[1].open_fen == 7_000  # the 24th's online average


def test_a_day_with_only_listings_keeps_the_previous_close():
    days = daily([], {"2026-11-24": 2}, open_rule="first_trade", reference_fen=6_800)
    assert (days[0].close_fen, days[0].high_fen, days[0].deals) == (6_800, None, 0)


def test_cumulative_shares_like_the_national_2022_figures():
    # The national market's 2022: 50.889 Mt, 87.84 % block and 12.16 % listing.
    ticks = [
        Tick("2022-12-30", 5_500, 44_700_898, "block"),
        Tick("2022-12-30", 5_500, 6_188_102, "listing"),
    ]
    total = cumulative(daily(ticks, {}, open_rule="first_trade", reference_fen=5_500))
    assert total["total_volume_t"] == 50_889_000
    assert total["share_percent"] == {"listing": "12.16", "block": "87.84"}
    assert total["average_fen"] == 5_500
