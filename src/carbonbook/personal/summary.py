"""What a person's carbon account page shows: today, this month, all time, and grams per
behaviour per day, read from the stored events (each says which methodology counted it)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

import sqlalchemy as sa

from carbonbook.db.schema import personal_events

CREDITED = 0  # personal_events.status of an event that earned grams


@dataclass(frozen=True, slots=True)
class CarbonSummary:
    """Milligrams of CO2e avoided, as the account page shows them."""

    today_mg: int
    month_mg: int
    total_mg: int
    events: int
    days: list[str]  # the chart's x axis: each day of the window, oldest first
    by_behaviour: dict[str, list[int]]  # behaviour -> milligrams on each day of `days`
    methodologies: list[str] = field(default_factory=list)  # ID@VERSION that counted them


def carbon_summary(engine: sa.Engine, person: str, today: date, window: int = 30) -> CarbonSummary:
    """The person's account as of `today` (an Asia/Shanghai day), with a `window`-day chart."""
    first = today - timedelta(days=window - 1)
    days = [(first + timedelta(days=n)).isoformat() for n in range(window)]
    index = {day: n for n, day in enumerate(days)}
    month = today.isoformat()[:7]
    e = personal_events.c
    credited = sa.and_(e.person == person, e.status == CREDITED)
    with engine.connect() as conn:
        total, count = conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(e.reduction_mg), 0), sa.func.count()).where(
                credited
            )
        ).one()
        rows = conn.execute(
            sa.select(e.local_day, e.behaviour, sa.func.sum(e.reduction_mg))
            .where(credited, e.local_day >= month + "-01", e.local_day <= today.isoformat())
            .group_by(e.local_day, e.behaviour)
        ).all()
        window_rows = conn.execute(
            sa.select(e.local_day, e.behaviour, sa.func.sum(e.reduction_mg))
            .where(credited, e.local_day >= days[0], e.local_day <= days[-1])
            .group_by(e.local_day, e.behaviour)
        ).all()
        methodologies = sorted(
            conn.execute(sa.select(e.methodology).where(credited).distinct()).scalars()
        )
    by_behaviour: dict[str, list[int]] = defaultdict(lambda: [0] * window)
    for day, behaviour, mg in window_rows:
        by_behaviour[behaviour][index[day]] += int(mg)
    return CarbonSummary(
        today_mg=sum(int(mg) for day, _, mg in rows if day == today.isoformat()),
        month_mg=sum(int(mg) for _, _, mg in rows),
        total_mg=int(total),
        events=int(count),
        days=days,
        by_behaviour=dict(sorted(by_behaviour.items())),
        methodologies=methodologies,
    )
