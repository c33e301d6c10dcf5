"""The exchange calendar through 2027 as data, and the next year loaded by the operator
(`carbonbook calendar load`): validated, audited, used by the markets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from carbonbook.api.app import create_api
from carbonbook.cli.main import app
from carbonbook.db.engine import make_engine
from carbonbook.db.schema import audit_log, exchange_holidays
from carbonbook.exchange import calendar, markets
from carbonbook.exchange.markets import market

runner = CliRunner()


def ten_am(day: str) -> datetime:
    """10:00 in Shanghai on `day`, inside the morning session."""
    return datetime.combine(date.fromisoformat(day), datetime.min.time(), UTC).replace(hour=2)


@pytest.fixture(autouse=True)
def _shipped_calendar() -> Iterator[None]:
    markets.use_loaded_calendar(None)
    yield
    markets.use_loaded_calendar(None)


def test_the_shipped_calendar_closes_the_markets_on_the_2027_statutory_holidays() -> None:
    national = market("national")
    for day in ("2027-01-01", "2027-02-05", "2027-02-10", "2027-04-05", "2027-06-09",
                "2027-09-15", "2027-10-01", "2027-10-05"):  # fmt: skip
        assert not national.is_open(ten_am(day)), day
    assert national.is_open(ten_am("2027-01-04"))  # the first Monday
    assert market("practice").is_open(ten_am("2027-01-01"))


def test_every_shipped_year_passes_the_load_validation_and_2027_is_provisional() -> None:
    years = calendar.shipped()
    assert years[2027].provisional
    assert "795" in years[2027].source


YEAR_2028 = """
year = 2028
provisional = false
source = "国务院办公厅关于2028年部分节假日安排的通知 (test)"
holidays = ["2028-01-03", "2028-05-01"]
weekend_holidays = ["2028-01-01"]
"""


def _write(tmp_path: Path, text: str, name: str = "2028.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_loaded_year_is_stored_audited_and_closes_the_markets(
    db_url: str, tmp_path: Path
) -> None:
    assert market("national").is_open(ten_am("2028-01-03"))
    result = runner.invoke(
        app, ["calendar", "load", str(_write(tmp_path, YEAR_2028)), "--database", db_url, "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["holidays"] == ["2028-01-03", "2028-05-01"]
    engine = make_engine(db_url)
    try:
        create_api(engine)  # a server starting on this database reads the loaded years
        assert not market("national").is_open(ten_am("2028-01-03"))
        assert not market("ccer").is_open(ten_am("2028-05-01"))
        assert market("national").is_open(ten_am("2028-01-04"))
        with engine.connect() as conn:
            audited = conn.execute(
                sa.select(audit_log.c.actor, audit_log.c.subject).where(
                    audit_log.c.action == "calendar.load"
                )
            ).all()
        assert [tuple(r) for r in audited] == [("operator:cli", "calendar:2028")]
    finally:
        engine.dispose()


def test_a_loaded_year_replaces_the_shipped_one(db_url: str, tmp_path: Path) -> None:
    notice = YEAR_2028.replace("2028", "2027").replace("2027-01-03", "2027-06-09")
    notice = notice.replace('weekend_holidays = ["2027-01-01"]', "").replace("05-01", "05-03")
    engine = make_engine(db_url)
    try:
        calendar.load(engine, _write(tmp_path, notice, "2027.toml"))
        assert not market("national").is_open(ten_am("2027-06-09"))
        assert market("national").is_open(ten_am("2027-09-15"))  # not in the loaded year
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (("2028-05-01", "2029-05-01"), "outside 2028"),
        (("2028-05-01", "2028-01-03"), "twice"),
        (('weekend_holidays = ["2028-01-01"]', ""), None),  # valid: control case
        (('"2028-05-01"]', '"2028-05-01", "2028-01-08"]'), "weekend"),  # a Saturday unflagged
        (("2028-05-01", "2028-02-30"), "holidays"),
        (("year = 2028", "year = 'next'"), "year"),
    ],
)
def test_a_bad_calendar_is_refused_whole_and_changes_nothing(
    db_url: str, tmp_path: Path, change: tuple[str, str], says: str | None
) -> None:
    path = _write(tmp_path, YEAR_2028.replace(*change))
    result = runner.invoke(app, ["calendar", "load", str(path), "--database", db_url])
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            stored = conn.execute(sa.select(sa.func.count()).select_from(exchange_holidays))
            count = stored.scalar_one()
    finally:
        engine.dispose()
    if says is None:
        assert result.exit_code == 0, result.output
        return
    assert result.exit_code == 1, result.output
    assert "BAD_CALENDAR" in result.output
    assert says in result.output
    assert count == 0
