"""Household electricity: daily meter readings become kWh saved against the city figure or the
household's own trailing average, credited once as CO2e through the ledger."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from carbonbook.db.schema import meter_readings
from carbonbook.ledger import Ledger
from carbonbook.methodology.registry import get
from carbonbook.personal.electricity import Meters, NotAMeterMethodologyError, saved_kwh
from carbonbook.personal.service import Personal

SZ = get("sz-household-electricity@2022")
UTILITY = "csg-shenzhen"  # the utility partner (南方电网深圳)
TODAY = date(2026, 11, 25)
START = date(2026, 11, 1)


def readings(uses: list[str], meter: str = "m-1", person: str = "lin", start: date = START):
    """Daily register readings for a household using `uses` kWh on successive days."""
    register = Decimal(1000)
    out = [{"meter_id": meter, "person": person, "day": str(start), "reading_kwh": str(register)}]
    for n, use in enumerate(uses, start=1):
        register += Decimal(use)
        out.append(
            {
                "meter_id": meter,
                "person": person,
                "day": str(start + timedelta(days=n)),
                "reading_kwh": str(register),
            }
        )
    return out


def grams(engine: sa.Engine, person: str = "lin") -> int:
    account = Ledger(engine).find_account(f"person:{person}", "CO2E_MG")
    return 0 if account is None else Ledger(engine).balance(account.id).balance


@pytest.fixture
def meters(engine: sa.Engine) -> Meters:
    Personal(engine).link_platform("lin", UTILITY)  # lin consents to share meter data
    return Meters(engine)


def test_a_household_below_the_city_figure_saves_the_difference(engine, meters):
    report = meters.ingest(readings(["6", "6", "7.5"]), SZ, UTILITY, today=TODAY).to_document()
    assert [d["saved_kwh"] for d in report["days"]] == ["2.000", "2.000", "0.500"]
    assert report["people"]["lin"]["grams"] == "2566.35"  # 4.5 kWh x 570.3 g
    assert grams(engine) == 2_566_350


def test_a_heavy_user_is_compared_with_its_own_trailing_week(engine, meters):
    # Seven days at 12 kWh (above the city's 8: nothing saved), then 10 kWh: 2 kWh below its own
    # trailing mean of 12. Without the rule a heavy user could never earn.
    report = meters.ingest(readings(["12"] * 7 + ["10"]), SZ, UTILITY, today=TODAY).to_document()
    assert [d["baseline_kwh"] for d in report["days"]] == ["8.000"] * 7 + ["12.000"]
    assert [d["saved_kwh"] for d in report["days"]][-1] == "2.000"
    assert grams(engine) == 1_140_600


def test_a_missing_day_credits_nothing_for_the_day_after(engine, meters):
    series = readings(["6", "6", "6"])
    del series[2]  # the register at the end of day 2 never arrived
    report = meters.ingest(series, SZ, UTILITY, today=TODAY).to_document()
    assert [d["day"] for d in report["days"]] == ["2026-11-02"]
    assert grams(engine) == 1_140_600


def test_readings_in_any_order_give_the_same_result(engine, meters):
    series = readings(["6", "5", "7", "8", "4"])
    meters.ingest(series[3:], SZ, UTILITY, today=TODAY)
    meters.ingest(series[:3], SZ, UTILITY, today=TODAY)
    assert grams(engine) == int((Decimal(2 + 3 + 1 + 0 + 4) * Decimal("570.3")) * 1000)


def test_a_resent_batch_credits_nothing_twice(engine, meters):
    series = readings(["6", "6"])
    meters.ingest(series, SZ, UTILITY, today=TODAY)
    again = meters.ingest(series, SZ, UTILITY, today=TODAY).to_document()
    assert again["duplicates"] == 3
    assert again["stored"] == 0
    assert grams(engine) == 2_281_200


def test_bad_readings_are_refused_one_by_one_and_the_rest_go_on(engine, meters):
    good = readings(["6"])
    bad = [
        {"meter_id": "m-1", "person": "lin", "day": str(TODAY), "reading_kwh": "1"},
        {"meter_id": "m-1", "person": "lin", "day": "2026-13-01", "reading_kwh": "1"},
        {"meter_id": "m-1", "person": "lin", "day": "2026-10-01", "reading_kwh": "-1"},
        {"meter_id": "m-1", "person": "lin", "day": "2026-10-02", "reading_kwh": "1.0001"},
        {"meter_id": "m-1", "person": "lin", "day": str(START), "reading_kwh": "999"},
        "not an object",
    ]
    report = meters.ingest(good + bad, SZ, UTILITY, today=TODAY).to_document()
    assert [r["code"] for r in report["rejected"]] == [
        "READING_NOT_FINAL",
        "BAD_READING",
        "BAD_READING",
        "BAD_READING",
        "CONFLICTING_READING",
        "BAD_READING",
    ]
    assert report["stored"] == 2
    assert grams(engine) == 1_140_600


def test_a_register_that_goes_down_is_refused(engine, meters):
    series = readings(["6"])
    series.append({"meter_id": "m-1", "person": "lin", "day": "2026-11-03", "reading_kwh": "10"})
    report = meters.ingest(series, SZ, UTILITY, today=TODAY).to_document()
    assert "METER_ROLLBACK" in [r["code"] for r in report["rejected"]]
    assert grams(engine) == 1_140_600


def test_without_consent_nothing_is_credited_until_the_person_links_the_utility(engine):
    meters = Meters(engine)
    series = readings(["6"], person="wu")
    first = meters.ingest(series, SZ, UTILITY, today=TODAY).to_document()
    assert first["rejected"]
    assert grams(engine, "wu") == 0
    Personal(engine).link_platform("wu", UTILITY)
    meters.ingest(series, SZ, UTILITY, today=TODAY)  # the utility re-sends: nothing was lost
    assert grams(engine, "wu") == 1_140_600
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(meter_readings)).scalar() == 2


def test_a_methodology_without_a_city_figure_cannot_quantify_meters(meters):
    with pytest.raises(NotAMeterMethodologyError):
        meters.ingest(readings(["6"]), get("sz-tph@2022"), UTILITY, today=TODAY)


def test_saved_kwh_is_never_negative_and_rounds_down_to_the_watt_hour():
    assert saved_kwh(Decimal(9), Decimal(8)) == 0
    assert saved_kwh(Decimal("6.0004"), Decimal(8)) == Decimal("1.999")


def test_a_meter_belongs_to_the_first_person_it_was_read_for(engine, meters):
    # lin's meter m-1 is read for two days; then the utility names wu for the same meter: the
    # saving of lin's household must never reach wu's account.
    Personal(engine).link_platform("wu", UTILITY)
    meters.ingest(readings(["6"]), SZ, UTILITY, today=TODAY)
    later = [
        {"meter_id": "m-1", "person": "wu", "day": "2026-11-03", "reading_kwh": "1010"},
        {"meter_id": "m-1", "person": "wu", "day": "2026-11-04", "reading_kwh": "1014"},
    ]
    report = meters.ingest(later, SZ, UTILITY, today=TODAY).to_document()
    assert [r["code"] for r in report["rejected"]] == ["METER_BOUND_TO_OTHER"] * 2
    assert all(r["message_zh"] != r["message"] for r in report["rejected"])
    assert report["stored"] == 0
    assert grams(engine, "wu") == 0
    assert grams(engine) == 1_140_600
    # The owner's own readings still go on.
    mine = [{**r, "person": "lin"} for r in later]
    meters.ingest(mine, SZ, UTILITY, today=TODAY)
    assert grams(engine) == 1_140_600 + 2 * 1_140_600 + 4 * 570_300


def test_a_rolled_back_reading_is_refused_and_never_becomes_the_next_base(engine, meters):
    # 1000 -> 1006 on day 2, then the register "reads" 10 on day 3 and 16 on day 4. Had day 3
    # become a base, day 4 would show 6 kWh used and credit 2 kWh saved.
    series = readings(["6"])
    series += [
        {"meter_id": "m-1", "person": "lin", "day": "2026-11-03", "reading_kwh": "10"},
        {"meter_id": "m-1", "person": "lin", "day": "2026-11-04", "reading_kwh": "16"},
    ]
    report = meters.ingest(series, SZ, UTILITY, today=TODAY).to_document()
    assert [r["code"] for r in report["rejected"]] == ["METER_ROLLBACK"] * 2
    assert [d["day"] for d in report["days"]] == ["2026-11-02"]
    assert grams(engine) == 1_140_600
    with engine.connect() as conn:
        kept = conn.execute(sa.select(meter_readings.c.day).order_by(meter_readings.c.day))
        assert list(kept.scalars()) == ["2026-11-01", "2026-11-02"]


def test_a_late_reading_above_a_later_days_register_is_a_rollback_too(engine, meters):
    series = readings(["6", "6"])  # 1000, 1006, 1012
    meters.ingest([series[0], series[2]], SZ, UTILITY, today=TODAY)
    late = {**series[1], "reading_kwh": "1020"}  # above day 3's 1012
    report = meters.ingest([late], SZ, UTILITY, today=TODAY).to_document()
    assert [r["code"] for r in report["rejected"]] == ["METER_ROLLBACK"]
    assert grams(engine) == 0
