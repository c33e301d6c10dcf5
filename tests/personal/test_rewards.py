"""Points and rewards: redemption is all or nothing, the last item goes to exactly one person,
vouchers are good once and only until they expire, and points lapse oldest first."""

from __future__ import annotations

import threading
from datetime import date, datetime

import pytest
import sqlalchemy as sa

from carbonbook.db.schema import redemptions, rewards
from carbonbook.ledger import AccountFlags, Batch, Ledger, TransferRequest
from carbonbook.ledger.errors import InsufficientFundsError
from carbonbook.personal.rewards import (
    SHANGHAI,
    BadRewardError,
    ExpiryRule,
    KeyReusedError,
    OutOfStockError,
    RewardNotAvailableError,
    Rewards,
    UnknownVoucherError,
    VoucherExpiredError,
    VoucherUsedError,
    parse_catalogue,
    points_to_expire,
)
from carbonbook.personal.service import Personal

CATALOGUE = """
[[reward]]
id = "bike-month-card"
title_zh = "共享单车月卡"
title_en = "Shared-bike monthly card"
sponsor = "bike-a"
points = 100
stock = 2
valid_from = 2020-01-01
valid_until = 2099-12-31
voucher_days = 30

[[reward]]
id = "school-meal"
title_zh = "捐一份山区学生午餐"
title_en = "Donate a school meal"
sponsor = "charity"
points = 30
stock = 1
valid_from = "2020-01-01"
valid_until = "2099-12-31"
voucher_days = 1

[[reward]]
id = "last-season"
title_zh = "上一季的公交卡"
title_en = "Last season's transit credit"
sponsor = "metro"
points = 10
stock = 5
valid_from = 2020-01-01
valid_until = 2020-12-31
voucher_days = 7
"""


def today() -> date:
    return datetime.now(SHANGHAI).date()


def give_points(engine: sa.Engine, person: str, points: int, key: str = "seed") -> None:
    ledger = Ledger(engine)
    ledger.ensure_assets()
    with engine.begin() as conn:
        owner = Personal(engine).ensure_person(conn, person)
        issuer = ledger.open_account_in(conn, "scheme:test", "POINT", "issuer", AccountFlags.ISSUER)
        wallet = ledger.open_account_in(conn, owner, "POINT")
        ledger.post_in(
            conn,
            Batch(
                "test",
                f"{person}:{key}",
                [TransferRequest.move(issuer.id, wallet.id, "POINT", points, "earn")],
            ),
        )


def points_of(engine: sa.Engine, person: str) -> int:
    account = Ledger(engine).find_account(f"person:{person}", "POINT")
    assert account is not None
    return Ledger(engine).balance(account.id).balance


def stock_of(engine: sa.Engine, reward: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(rewards.c.stock).where(rewards.c.id == reward)).scalar_one()


@pytest.fixture
def shop(engine: sa.Engine) -> Rewards:
    service = Rewards(engine)
    service.put(parse_catalogue(CATALOGUE))
    return service


def test_a_redemption_spends_the_points_takes_one_item_and_issues_a_voucher(engine, shop):
    give_points(engine, "chen", 130)
    redemption = shop.redeem("chen", "bike-month-card", "r1")
    assert points_of(engine, "chen") == 30
    assert stock_of(engine, "bike-month-card") == 1
    assert len(redemption.voucher) == 12
    assert redemption.expires_at - redemption.redeemed_at == 30 * 86_400 * 1_000_000
    assert [r.voucher for r in shop.redemptions_of("chen")] == [redemption.voucher]
    assert Ledger(engine).asset_totals()["POINT"] == 0  # double entry holds


def test_a_retry_with_the_same_key_returns_the_first_redemption_and_spends_nothing(engine, shop):
    give_points(engine, "chen", 250)
    first = shop.redeem("chen", "bike-month-card", "r1")
    again = shop.redeem("chen", "bike-month-card", "r1")
    assert again == first
    assert points_of(engine, "chen") == 150
    assert stock_of(engine, "bike-month-card") == 1
    with pytest.raises(KeyReusedError):
        shop.redeem("chen", "school-meal", "r1")


def test_too_few_points_refuses_and_leaves_stock_and_vouchers_untouched(engine, shop):
    give_points(engine, "chen", 99)
    with pytest.raises(InsufficientFundsError):
        shop.redeem("chen", "bike-month-card", "r1")
    assert points_of(engine, "chen") == 99
    assert stock_of(engine, "bike-month-card") == 2
    assert shop.redemptions_of("chen") == []


def test_out_of_stock_and_out_of_season_are_refused(engine, shop):
    give_points(engine, "chen", 100)
    give_points(engine, "xu", 100)
    shop.redeem("chen", "school-meal", "a")
    with pytest.raises(OutOfStockError):
        shop.redeem("xu", "school-meal", "b")
    with pytest.raises(RewardNotAvailableError):
        shop.redeem("xu", "last-season", "c")
    assert points_of(engine, "xu") == 100


def test_two_people_racing_for_the_last_item_exactly_one_wins(engine, shop):
    for person in ("chen", "xu"):
        give_points(engine, person, 100)
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def attempt(person: str) -> None:
        barrier.wait()
        try:
            shop.redeem(person, "school-meal", f"{person}-1")
            outcomes[person] = "won"
        except OutOfStockError:
            outcomes[person] = "out of stock"

    threads = [threading.Thread(target=attempt, args=(p,)) for p in ("chen", "xu")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes.values()) == ["out of stock", "won"]
    winner = next(p for p, o in outcomes.items() if o == "won")
    loser = next(p for p, o in outcomes.items() if o != "won")
    assert points_of(engine, winner) == 70
    assert points_of(engine, loser) == 100
    assert stock_of(engine, "school-meal") == 0
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(redemptions)).scalar_one() == 1


def test_a_voucher_is_good_once_for_its_own_sponsor_until_it_expires(engine, shop):
    give_points(engine, "chen", 200)
    card = shop.redeem("chen", "bike-month-card", "a")
    meal = shop.redeem("chen", "school-meal", "b")
    with pytest.raises(UnknownVoucherError):
        shop.use_voucher(card.voucher, "charity")  # another sponsor's code looks unknown
    used = shop.use_voucher(card.voucher.lower(), "bike-a")
    assert used.used_at is not None
    with pytest.raises(VoucherUsedError):
        shop.use_voucher(card.voucher, "bike-a")
    with pytest.raises(VoucherExpiredError):
        shop.use_voucher(meal.voucher, "charity", now_us=meal.expires_at + 1)


def test_points_lapse_oldest_first_and_a_rerun_lapses_nothing_more(engine, shop):
    give_points(engine, "chen", 130)
    give_points(engine, "xu", 40)
    shop.redeem("chen", "bike-month-card", "a")  # chen spends 100 of 130
    rule = ExpiryRule("calendar_years", 1)
    far = date(today().year + 2, 1, 1)  # everything earned today is two years old then
    assert shop.expire_points(rule, far) == {
        "cutoff": f"{far.year - 1}-01-01",
        "people": 2,
        "points_expired": 70,
    }
    assert points_of(engine, "chen") == 0
    assert points_of(engine, "xu") == 0
    assert shop.expire_points(rule, far)["points_expired"] == 0
    assert Ledger(engine).asset_totals()["POINT"] == 0


def test_points_earned_after_the_cutoff_do_not_lapse(engine, shop):
    give_points(engine, "chen", 50)
    assert shop.expire_points(ExpiryRule("days", 365), today())["points_expired"] == 0
    assert points_of(engine, "chen") == 50


def test_what_lapses_is_what_the_debits_have_not_consumed():
    assert points_to_expire(100, 30) == 70
    assert points_to_expire(100, 130) == 0
    assert points_to_expire(0, 0) == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"points": 0}, "points must be a whole number >= 1"),
        ({"stock": -1}, "stock must be a whole number >= 0"),
        ({"id": "bad id"}, "id may hold only"),
        ({"valid_until": "2019-01-01"}, "valid_until is before valid_from"),
        ({"valid_from": "someday"}, "valid_from must be a date"),
    ],
)
def test_a_bad_catalogue_item_names_its_field(change, message):
    item = {
        "id": "x",
        "title_zh": "x",
        "title_en": "x",
        "sponsor": "s",
        "points": 1,
        "stock": 1,
        "valid_from": "2020-01-01",
        "valid_until": "2020-12-31",
        "voucher_days": 1,
    } | change
    from carbonbook.personal.rewards import reward_from_mapping

    with pytest.raises(BadRewardError, match=message):
        reward_from_mapping(item, "item 1")
