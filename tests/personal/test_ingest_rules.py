"""Ingestion rules: daily caps, cross-platform duplicates, points across batches, bad lines."""

from __future__ import annotations

import json

from carbonbook.db.engine import make_engine
from carbonbook.ledger import Ledger
from carbonbook.methodology.registry import get
from carbonbook.personal.service import Personal
from tests.conftest import database

BJ = get("bj-green-life@2023")


def event(
    event_id: str,
    platform: str = "bike-a",
    person: str = "chen",
    behaviour: str = "shared_bike",
    quantity: str = "2.5",
    unit: str = "km",
    at: str = "2023-03-06T08:10:00+08:00",
) -> str:
    return json.dumps(
        {
            "platform": platform,
            "event_id": event_id,
            "person": person,
            "behaviour": behaviour,
            "quantity": quantity,
            "unit": unit,
            "occurred_at": at,
        }
    )


def run(url: str, *lines: str):
    engine = make_engine(url)
    try:
        return Personal(engine).ingest_lines(list(lines), BJ).to_document()
    finally:
        engine.dispose()


def test_the_daily_cap_refuses_the_event_that_passes_it(sqlite_url):
    result = run(
        sqlite_url,
        event("a", quantity="20"),
        event("b", quantity="9", at="2023-03-06T09:00:00+08:00"),
        event("c", quantity="2", at="2023-03-06T10:00:00+08:00"),
        event("d", quantity="2", at="2023-03-07T10:00:00+08:00"),
    )
    assert [(r["event_id"], r["code"]) for r in result["rejected"]] == [("c", "DAILY_CAP")]
    assert result["accepted"] == 3


def test_the_same_ride_from_two_platforms_is_credited_once(sqlite_url):
    result = run(
        sqlite_url,
        event("a", platform="bike-a"),
        event("x", platform="maps-z", at="2023-03-06T08:15:00+08:00"),
        event("y", platform="maps-z", at="2023-03-06T09:30:00+08:00"),
    )
    assert result["accepted"] == 2
    assert result["cross_platform_duplicates"] == 1
    assert result["people"]["chen"]["grams"] == "1250.00"


def test_a_stored_ride_marks_another_platforms_report_of_it_in_a_later_run(db_url):
    # Run one stores the ride; run two finds it in the database, on its person and behaviour
    # only: the other person's ride at the same minute and the same person's ride outside the
    # window are credited; the stored event is found even when the later run spans a month.
    run(db_url, event("a", platform="bike-a"), event("o", person="li", platform="bike-a"))
    result = run(
        db_url,
        event("x", platform="maps-z", at="2023-03-06T08:20:00+08:00"),
        event("m", platform="maps-z", person="li", at="2023-03-28T08:10:00+08:00"),
        event("l", platform="maps-z", person="wang", at="2023-03-06T08:10:00+08:00"),
        event("y", platform="maps-z", at="2023-03-06T09:30:00+08:00"),
        event("z", platform="maps-z", at="2023-03-01T08:10:00+08:00"),
    )
    assert result["cross_platform_duplicates"] == 1
    assert result["accepted"] == 4
    assert result["people"]["chen"]["grams"] == "1250.00"  # y and z, not x


def test_days_are_asia_shanghai_days_and_points_top_up_across_batches(sqlite_url):
    # 23:30 UTC on the 5th is 07:30 on the 6th in Shanghai: the same day as the later rides.
    first = run(sqlite_url, event("a", quantity="0.2", at="2023-03-05T23:30:00+00:00"))
    assert first["people"]["chen"] == {"grams": "50.00", "points": 1}  # 0.5 rounds half-up
    second = run(sqlite_url, event("b", quantity="4.8", at="2023-03-06T18:00:00+08:00"))
    assert second["people"]["chen"] == {"grams": "1200.00", "points": 12}  # 1.25 kg -> 13 in all
    engine = make_engine(sqlite_url)
    assert Ledger(engine).find_account("person:chen", "POINT").balance == 13
    engine.dispose()


def test_bad_lines_get_codes_and_the_rest_goes_on(sqlite_url):
    result = run(
        sqlite_url,
        "not json",
        json.dumps([1]),
        event("t1", at="yesterday"),
        event("t2", at="2023-03-06T08:10:00"),
        event("q1", quantity="abc"),
        event("q2", quantity="51"),
        event("ok"),
    )
    assert [(r["line"], r["code"]) for r in result["rejected"]] == [
        (1, "BAD_EVENT"),
        (2, "BAD_EVENT"),
        (3, "BAD_TIME"),
        (4, "BAD_TIME"),
        (5, "BAD_QUANTITY"),
        (6, "BAD_QUANTITY"),
    ]
    assert result["accepted"] == 1


def test_a_file_gives_the_same_result_whatever_its_chunks(db_url, tmp_path, monkeypatch):
    # People recur from chunk to chunk (their accounts are remembered, not re-read), a repeated
    # line and a cap reached in a later chunk, and a day's points topped up chunk by chunk:
    # chunks of 3 give what one chunk gives, in the report and on the ledger.
    lines = [
        event("a", quantity="3.0"),
        event("b", person="li", quantity="1.0"),
        event("c", person="wang", platform="delivery-b", behaviour="no_cutlery", quantity="1",
              unit="order"),
        event("d", quantity="2.0", at="2023-03-06T12:00:00+08:00"),
        event("a", quantity="3.0"),  # the same event again
        event("e", person="li", quantity="4.0", at="2023-03-07T08:00:00+08:00"),
        event("f", quantity="26.0", at="2023-03-06T18:00:00+08:00"),  # passes the cap with a, d
        event("g", quantity="4.0", at="2023-03-06T19:00:00+08:00"),
        event("h", person="wang", platform="delivery-b", behaviour="no_cutlery", quantity="1",
              unit="order", at="2023-03-06T12:30:00+08:00"),
    ]  # fmt: skip
    backend = "sqlite" if db_url.startswith("sqlite") else "postgres"
    documents, balances = [], []
    with database(backend, tmp_path / "whole") as whole:
        for chunk, url in ((3, db_url), (10_000, whole)):
            monkeypatch.setattr("carbonbook.personal.gate.CHUNK", chunk)
            documents.append(run(url, *lines))
            balances.append(_balances(url))
    assert documents[0] == documents[1]
    assert balances[0] == balances[1]
    assert documents[0]["duplicates"] == 1
    assert [r["event_id"] for r in documents[0]["rejected"]] == ["f"]
    assert balances[0][("chen", "CO2E_MG")] == 2_250_000  # a, d and g: 9 km at 250 g
    assert balances[0][("chen", "POINT")] == 23  # 8, then 5 more, then 10 more: 22.5 half-up


def _balances(url: str) -> dict[tuple[str, str], int]:
    engine = make_engine(url)
    ledger = Ledger(engine)
    try:
        return {
            (who, asset): ledger.find_account(f"person:{who}", asset).balance
            for who in ("chen", "li", "wang")
            for asset in ("CO2E_MG", "POINT")
        }
    finally:
        engine.dispose()
