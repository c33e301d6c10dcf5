"""Household electricity (深圳碳普惠 家庭节约用电): daily meter readings from a utility partner,
the day's use against the methodology's baseline, and the kWh saved credited as CO2e.

A utility sends one register reading per meter and day (the register at the end of that
Asia/Shanghai day). A day's use is the difference of two consecutive days' readings, so a
missing day credits nothing for the day after it (conservative) and readings may arrive in any
order. Each evaluated day becomes an ordinary partner event `(utility, "meter:day")` of
`household_electricity` in kWh saved, and goes through the same ingestion as every other
event: consent, identity, caps, points and the ledger. A re-sent reading changes nothing; a
different value for a day already read is refused.

A meter belongs to one person: the first reading stored binds it (`meter_bindings`), and a
reading naming anyone else is refused (METER_BOUND_TO_OTHER), so one household's saving is
never credited to another. A register only goes up: a reading below an earlier day's or above
a later day's is refused (METER_ROLLBACK) and never stored, so it never becomes a base.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from carbonbook.db.schema import meter_bindings, meter_readings, personal_events
from carbonbook.errors import ValidationFailedError
from carbonbook.numbers import D, NotADecimalError
from carbonbook.personal.service import Personal

if TYPE_CHECKING:
    from carbonbook.methodology.model import Methodology

BEHAVIOUR = "household_electricity"
WH = Decimal(1000)
MAX_READING_KWH = Decimal(10) ** 9


class NotAMeterMethodologyError(ValidationFailedError):
    code = "NO_BASELINE"


@dataclass(frozen=True, slots=True)
class Reading:
    meter_id: str
    person: str
    day: date
    reading_wh: int


@dataclass(slots=True)
class MeterReport:
    """What a batch of readings did, reading by reading, and what the days credited."""

    methodology: str
    stored: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    days: list[dict[str, Any]] = field(default_factory=list)
    credited: dict[str, Any] = field(default_factory=dict)  # the ingestion report's people

    def reject(
        self,
        index: int,
        meter_id: str | None,
        code: str,
        message: str,
        message_zh: str | None = None,
    ) -> None:
        self.rejected.append(
            {
                "reading": index,
                "meter_id": meter_id,
                "code": code,
                "message": message,
                "message_zh": message_zh or message,
            }
        )

    def to_document(self) -> dict[str, Any]:
        return {
            "methodology": self.methodology,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "days": self.days,
            "people": self.credited,
        }


def saved_kwh(used_kwh: Decimal, baseline: Decimal) -> Decimal:
    """kWh saved below the baseline, never negative, rounded down to the watt-hour."""
    return max(Decimal(0), baseline - used_kwh).quantize(Decimal("0.001"), rounding=ROUND_FLOOR)


def parse_reading(  # noqa: PLR0911 - one return per refusal, in order
    raw: Any, today: date
) -> tuple[Reading | None, tuple[str, str] | None]:
    """One reading, or (code, message) of its refusal."""
    if not isinstance(raw, dict):
        return None, ("BAD_READING", "a reading must be a JSON object")
    for name in ("meter_id", "person", "day", "reading_kwh"):
        value = raw.get(name)
        if not isinstance(value, str) or not value.strip() or len(value) > 120:
            return None, ("BAD_READING", f"field {name!r} must be a string of 1 to 120 characters")
    try:
        day = date.fromisoformat(raw["day"])
    except ValueError:
        return None, ("BAD_READING", f"day {raw['day']!r} is not YYYY-MM-DD")
    if day >= today:
        return None, ("READING_NOT_FINAL", f"day {day} is not over yet in Asia/Shanghai")
    try:
        kwh = D(raw["reading_kwh"])  # the one bounded decimal parser (numbers.D)
    except NotADecimalError:
        return None, ("BAD_READING", f"reading_kwh {raw['reading_kwh']!r} is not a decimal")
    if not kwh.is_finite() or kwh < 0 or kwh >= MAX_READING_KWH or (kwh * WH) % 1 != 0:
        return None, (
            "BAD_READING",
            "reading_kwh must be between 0 and 10^9 with at most 3 decimals (watt-hours)",
        )
    return Reading(raw["meter_id"], raw["person"], day, int(kwh * WH)), None


class Meters:
    """Meter readings in, saved kWh out as events through the personal ingestion."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def ingest(
        self, raws: list[Any], methodology: Methodology, platform: str, *, today: date | None = None
    ) -> MeterReport:
        behaviour = methodology.behaviours.get(BEHAVIOUR)
        rule = behaviour.baseline_rule if behaviour is not None else None
        if rule is None or rule.city_kwh_per_day is None:
            raise NotAMeterMethodologyError(
                f"{methodology.ref} has no quantifiable {BEHAVIOUR} baseline",
                f"{methodology.ref} 没有可量化的 {BEHAVIOUR} 基准线",
            )
        zone = ZoneInfo(methodology.timezone)
        today = today or datetime.now(zone).date()
        report = MeterReport(methodology.ref)
        touched: set[str] = set()
        with self.engine.begin() as conn:
            for index, raw in enumerate(raws, start=1):
                reading, refusal = parse_reading(raw, today)
                if reading is None:
                    assert refusal is not None  # noqa: S101 - parse_reading returns one
                    meter = raw.get("meter_id") if isinstance(raw, dict) else None
                    report.reject(index, meter if isinstance(meter, str) else None, *refusal)
                    continue
                if self._store(conn, platform, reading, index, report) is not False:
                    touched.add(reading.meter_id)  # a re-sent reading retries its credit too
            for meter_id in sorted(touched):
                self._evaluate(conn, platform, meter_id, methodology, report)
            events = [
                event
                for meter_id in sorted(touched)
                for event in _uncredited(conn, platform, meter_id, zone)
            ]
        if events:
            ingested = Personal(self.engine).ingest_events(events, methodology, platform)
            document = ingested.to_document()
            report.credited = document["people"]
            for entry in document["rejected"]:
                report.reject(
                    0, entry["event_id"], entry["code"], entry["message"], entry.get("message_zh")
                )
        return report

    @staticmethod
    def _store(
        conn: sa.Connection, platform: str, reading: Reading, index: int, report: MeterReport
    ) -> bool | None:
        """True: stored; None: the same reading again; False: refused.

        The one gate every reading passes before it is kept: the meter's owner, the day's
        value, and a register that never goes down.
        """
        m = meter_readings.c
        owner = _bound_to(conn, platform, reading.meter_id)
        if owner is not None and owner != reading.person:
            report.reject(
                index,
                reading.meter_id,
                "METER_BOUND_TO_OTHER",
                f"meter {reading.meter_id} belongs to another person",
                f"电表 {reading.meter_id} 已绑定其他用户",
            )
            return False
        found = conn.execute(
            sa.select(m.reading_wh, m.person).where(
                m.platform == platform, m.meter_id == reading.meter_id, m.day == str(reading.day)
            )
        ).first()
        if found is not None:
            if (found.reading_wh, found.person) == (reading.reading_wh, reading.person):
                report.duplicates += 1
                return None
            kwh = Decimal(found.reading_wh) / WH
            report.reject(
                index,
                reading.meter_id,
                "CONFLICTING_READING",
                f"{reading.day} was already read as {kwh} kWh",
                f"{reading.day} 已有读数 {kwh} kWh",
            )
            return False
        if _rolls_back(conn, platform, reading):
            report.reject(
                index,
                reading.meter_id,
                "METER_ROLLBACK",
                f"the register on {reading.day} is below an earlier day's or above a later "
                "day's reading: refused, never a base",
                f"{reading.day} 的读数低于之前或高于之后的读数（电表倒转），拒收且不作为基数",
            )
            return False
        if owner is None and not _bind(conn, platform, reading.meter_id, reading.person):
            report.reject(
                index,
                reading.meter_id,
                "METER_BOUND_TO_OTHER",
                f"meter {reading.meter_id} belongs to another person",
                f"电表 {reading.meter_id} 已绑定其他用户",
            )
            return False
        conn.execute(
            meter_readings.insert().values(
                platform=platform,
                meter_id=reading.meter_id,
                day=str(reading.day),
                person=reading.person,
                reading_wh=reading.reading_wh,
                received_at=_now_us(),
            )
        )
        report.stored += 1
        return True

    @staticmethod
    def _evaluate(
        conn: sa.Connection,
        platform: str,
        meter_id: str,
        methodology: Methodology,
        report: MeterReport,
    ) -> None:
        """Evaluate the days of this meter that now can be (both readings there), oldest first."""
        m = meter_readings.c
        rows = conn.execute(
            sa.select(m.day, m.person, m.reading_wh, m.used_wh)
            .where(m.platform == platform, m.meter_id == meter_id)
            .order_by(m.day)
        ).all()
        rule = methodology.behaviours[BEHAVIOUR].baseline_rule
        assert rule is not None  # noqa: S101 - checked by ingest
        history: list[Decimal] = []  # the household's daily uses in kWh, consecutive, oldest first
        previous: tuple[date, int] | None = None
        for row in rows:
            day = date.fromisoformat(row.day)
            consecutive = previous is not None and previous[0] == day - timedelta(days=1)
            if not consecutive:
                history = []  # a gap breaks the trailing window too
            if row.used_wh is not None:
                history.append(Decimal(row.used_wh) / WH)
            elif consecutive and previous is not None:
                used_wh = row.reading_wh - previous[1]
                if used_wh < 0:  # stored before the gate refused rollbacks: never a base
                    report.reject(
                        0,
                        meter_id,
                        "METER_ROLLBACK",
                        f"the register went down on {day}",
                        f"{day} 电表读数下降",
                    )
                    continue
                used = Decimal(used_wh) / WH
                baseline = rule.baseline_kwh(history)
                assert baseline is not None  # noqa: S101 - checked by ingest
                saved = saved_kwh(used, baseline)
                conn.execute(
                    meter_readings.update()
                    .where(m.platform == platform, m.meter_id == meter_id, m.day == row.day)
                    .values(
                        used_wh=used_wh,
                        baseline_wh=int((baseline * WH).to_integral_value(rounding=ROUND_FLOOR)),
                        saved_wh=int(saved * WH),
                        methodology=methodology.ref,
                    )
                )
                report.days.append(
                    {
                        "meter_id": meter_id,
                        "day": row.day,
                        "used_kwh": str(used),
                        "baseline_kwh": str(baseline.quantize(Decimal("0.001"))),
                        "saved_kwh": str(saved),
                    }
                )
                history.append(used)
            previous = (day, row.reading_wh)


def _now_us() -> int:
    return int(datetime.now(UTC).timestamp() * 1_000_000)


def _bound_to(conn: sa.Connection, platform: str, meter_id: str) -> str | None:
    b = meter_bindings.c
    person = conn.execute(
        sa.select(b.person).where(b.platform == platform, b.meter_id == meter_id)
    ).scalar()
    return None if person is None else str(person)


def _bind(conn: sa.Connection, platform: str, meter_id: str, person: str) -> bool:
    """Bind a meter to its first person; False when another batch bound it to someone else
    meanwhile (the key decides the race: the first binding wins)."""
    try:
        with conn.begin_nested():
            conn.execute(
                meter_bindings.insert().values(
                    platform=platform, meter_id=meter_id, person=person, bound_at=_now_us()
                )
            )
    except sa.exc.IntegrityError:
        return _bound_to(conn, platform, meter_id) == person
    return True


def _rolls_back(conn: sa.Connection, platform: str, reading: Reading) -> bool:
    """Is the reading below the register of an earlier day or above that of a later day?"""
    m = meter_readings.c
    mine = sa.and_(m.platform == platform, m.meter_id == reading.meter_id)
    before = conn.execute(
        sa.select(sa.func.max(m.reading_wh)).where(mine, m.day < str(reading.day))
    ).scalar()
    after = conn.execute(
        sa.select(sa.func.min(m.reading_wh)).where(mine, m.day > str(reading.day))
    ).scalar()
    return (before is not None and reading.reading_wh < int(before)) or (
        after is not None and reading.reading_wh > int(after)
    )


def _uncredited(
    conn: sa.Connection, platform: str, meter_id: str, zone: ZoneInfo
) -> list[dict[str, Any]]:
    """Events for evaluated days with kWh saved that the ledger has not credited yet.

    Ingestion runs after the readings commit; if it fails or the person has not consented
    yet, the next batch from this meter (or the same batch re-sent) offers the days again.
    """
    m, e = meter_readings.c, personal_events.c
    event_id = m.meter_id + sa.literal(":") + m.day
    rows = conn.execute(
        sa.select(m.day, m.person, m.saved_wh)
        .where(
            m.platform == platform,
            m.meter_id == meter_id,
            m.saved_wh > 0,
            ~sa.exists().where(e.platform == m.platform, e.event_id == event_id),
        )
        .order_by(m.day)
    ).all()
    return [
        {
            "platform": platform,
            "event_id": f"{meter_id}:{row.day}",
            "person": row.person,
            "behaviour": BEHAVIOUR,
            "quantity": str(Decimal(row.saved_wh) / WH),
            "unit": "kWh",
            "occurred_at": datetime.combine(
                date.fromisoformat(row.day), time(23, 59, 59), zone
            ).isoformat(),
            "evidence": "meter",
        }
        for row in rows
    ]
