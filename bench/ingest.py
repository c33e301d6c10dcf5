"""Personal-event ingestion at scale: one deterministic file of partner events (200,000 people,
3 platforms, 1 % repeated lines, 0.5 % bad lines) through the file path (`personal ingest`:
screening, duplicates, caps, one ledger batch per 1,000 events, the event rows), on SQLite
and PostgreSQL, beside the raw insert of the same event rows (executemany/COPY-free: the
same SQLAlchemy executemany in batches of 1,000, no checks, no ledger). RSS is sampled as
the file streams, to show memory does not grow with the file.
"""

from __future__ import annotations

import json
import random
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from bench.common import Timer, current_rss_mb, fresh_database, pg_url
from carbonbook.db.engine import make_engine
from carbonbook.db.schema import personal_events
from carbonbook.methodology.registry import get as get_methodology
from carbonbook.personal.service import Personal

METHODOLOGY = "bj-green-life@2023"
PLATFORMS = (
    ("bike-a", "shared_bike", "km"),
    ("delivery-b", "no_cutlery", "order"),
    ("logistics-c", "e_waybill", "parcel"),
)
SHANGHAI = ZoneInfo("Asia/Shanghai")
GOALS = {"sqlite": 50_000, "postgres": 25_000}


def write_events(path: Path, n: int, people: int, seed: int = 11) -> None:
    """The file, streamed to disk; the `n` lines include the repeats and the bad lines."""
    rng = random.Random(seed)
    start = datetime(2023, 3, 1, tzinfo=SHANGHAI)
    recent: list[str] = []
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            roll = rng.random()
            if roll < 0.005:
                out.write('{"platform": "bike-a", "event_id": "broken\n' if i % 2 else "{}\n")
                continue
            if roll < 0.015 and recent:
                out.write(rng.choice(recent))  # the same event again: credited once
                continue
            platform, behaviour, unit = PLATFORMS[i % 3]
            quantity = f"{rng.randint(5, 60) / 10:.1f}" if unit == "km" else "1"
            at = start + timedelta(minutes=rng.randrange(0, 31 * 24 * 60))
            line = json.dumps(
                {
                    "platform": platform,
                    "event_id": f"e{i}",
                    "person": f"p{rng.randrange(people)}",
                    "behaviour": behaviour,
                    "quantity": quantity,
                    "unit": unit,
                    "occurred_at": at.isoformat(),
                }
            )
            out.write(line + "\n")
            recent.append(line + "\n")
            if len(recent) > 1_000:
                recent.pop(0)


def _ingest(url: str, path: Path) -> tuple[float, dict[str, int], list[float]]:
    engine = make_engine(url)
    personal = Personal(engine)
    rss: list[float] = []
    timer = Timer()

    def progress(count: int) -> None:
        if count % 50_000 < 1_000:
            rss.append(current_rss_mb())

    with path.open(encoding="utf-8") as lines:
        report = personal.ingest_lines(lines, get_methodology(METHODOLOGY), progress=progress)
    seconds = timer.seconds()
    engine.dispose()
    counts = {
        "accepted": report.accepted,
        "duplicates": report.duplicates,
        "cross_platform_duplicates": report.cross_platform_duplicates,
        "rejected": len(report.rejected),
    }
    return seconds, counts, rss


def _raw(url: str, path: Path) -> float:
    """The same event rows, inserted with no checks and no ledger: the limit."""
    engine = make_engine(url)
    batch: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    timer = Timer()
    with path.open(encoding="utf-8") as lines:
        for text in lines:
            try:
                raw = json.loads(text)
                key = (raw["platform"], raw["event_id"])
            except (json.JSONDecodeError, KeyError):
                continue
            if key in seen:
                continue
            seen.add(key)
            at = datetime.fromisoformat(raw["occurred_at"])
            batch.append(
                {
                    "platform": key[0],
                    "event_id": key[1],
                    "person": raw["person"],
                    "behaviour": raw["behaviour"],
                    "quantity": raw["quantity"],
                    "unit": raw["unit"],
                    "evidence": "operator",
                    "occurred_at": int(at.timestamp() * 1_000_000),
                    "local_day": at.astimezone(SHANGHAI).date().isoformat(),
                    "methodology": METHODOLOGY,
                    "reduction_mg": 0,
                    "status": 0,
                    "batch_id": None,
                    "ingested_at": 0,
                }
            )
            if len(batch) == 1_000:
                with engine.begin() as conn:
                    conn.execute(personal_events.insert(), batch)
                batch = []
    if batch:
        with engine.begin() as conn:
            conn.execute(personal_events.insert(), batch)
    seconds = timer.seconds()
    with engine.connect() as conn:
        stored = conn.execute(sa.select(sa.func.count()).select_from(personal_events)).scalar_one()
    engine.dispose()
    return stored / seconds


def run(args: Any) -> str:
    n = max(1_000, args.events)
    people = max(100, n // 5)
    backends = ["sqlite"] + (["postgres"] if pg_url() else [])
    rows = []
    notes = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.jsonl"
        write_events(path, n, people)
        for backend in backends:
            with fresh_database(backend, Path(tmp)) as url:
                seconds, counts, rss = _ingest(url, path)
            with fresh_database(backend, Path(tmp)) as url:
                raw_rate = _raw(url, path)
            rate = n / seconds
            pct = 100 * rate / raw_rate
            rows.append(
                f"| {backend} | {rate:,.0f} | {raw_rate:,.0f} | {pct:.0f} % | "
                f"{max(rss, default=0):.0f} MB |"
            )
            goal = GOALS[backend]
            notes.append(
                f"- {backend}: {counts} ; goals {'met' if rate >= goal else 'MISSED'} "
                f">= {goal:,}/s, {'met' if pct >= 25 else 'MISSED'} >= 25 % of raw, "
                f"{'met' if max(rss, default=0) < 400 else 'MISSED'} RSS < 400 MB; RSS every "
                f"50,000 lines (MB): {', '.join(f'{r:.0f}' for r in rss)}"
            )
    return "\n".join(
        [
            f"## Personal ingestion: {n:,} partner events, {people:,} people, file path",
            "",
            (
                "Events per second over the whole file (lines read, screened, duplicates and caps "
                "applied, grams and points posted in one ledger batch per 1,000 events, event rows "
                "stored); raw = the same event rows inserted 1,000 at a time with no checks and no "
                "ledger. RSS is the process's resident memory sampled while the file streams."
            ),
            "",
            "| database | ingest events/s | raw insert rows/s | ingest / raw | peak RSS |",
            "|---|---:|---:|---:|---:|",
            *rows,
            "",
            *notes,
        ]
    )
