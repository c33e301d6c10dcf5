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
import secrets
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import sqlalchemy as sa

from bench.common import Timer, current_rss_mb, fresh_database, pg_url
from bench.http_orders import _serve
from carbonbook.db.engine import make_engine
from carbonbook.db.schema import people as people_table
from carbonbook.db.schema import personal_events, platform_links
from carbonbook.identity.service import Identity, sign
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
HTTP_GOAL = 20_000
HTTP_BATCH = 10_000  # events a request: the endpoint's limit
ENDPOINT = "/api/v1/partner/events"


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


def _http_seed(url: str, people: int) -> dict[str, tuple[str, str]]:
    """Three partner platforms (their HMAC keys) and every person linked to all three, set
    up with bulk inserts (set-up, not measured)."""
    engine = make_engine(url)
    identity = Identity(engine)
    keys = {}
    for platform, _, _ in PLATFORMS:
        partner, secret = identity.register_partner(platform, platform, rate_limit_per_minute=10**6)
        keys[platform] = (partner.key_id, secret)
    now = 0
    with engine.begin() as conn:
        for start in range(0, people, 10_000):
            handles = [f"p{i}" for i in range(start, min(people, start + 10_000))]
            conn.execute(
                people_table.insert(),
                [
                    {"handle": h, "owner": f"person:{h}", "user_id": None, "created_at": now}
                    for h in handles
                ],
            )
            conn.execute(
                platform_links.insert(),
                [
                    {"person": h, "platform": platform, "consented_at": now}
                    for h in handles
                    for platform, _, _ in PLATFORMS
                ],
            )
    engine.dispose()
    return keys


def _requests(path: Path) -> dict[str, list[bytes]]:
    """The file's events as signed-request bodies of 10,000 events, per platform (a line
    that is not JSON cannot travel in a JSON request and is left out)."""
    by_platform: dict[str, list[Any]] = {platform: [] for platform, _, _ in PLATFORMS}
    with path.open(encoding="utf-8") as lines:
        for i, text in enumerate(lines):
            try:
                raw = json.loads(text)
            except json.JSONDecodeError:
                continue
            platform = raw.get("platform") if isinstance(raw, dict) else None
            if platform not in by_platform:
                platform = PLATFORMS[i % 3][0]
            by_platform[platform].append(raw)
    return {
        platform: [
            json.dumps({"events": events[k : k + HTTP_BATCH]}).encode()
            for k in range(0, len(events), HTTP_BATCH)
        ]
        for platform, events in by_platform.items()
    }


def _http(url: str, path: Path, people: int) -> tuple[float, dict[str, int], float]:
    """Partners post their events to `POST /api/v1/partner/events`, signed, one client
    thread per partner, against `carbonbook serve` in its own process."""
    keys = _http_seed(url, people)
    bodies = _requests(path)
    sent = sum(body.count(b'"event_id"') for per in bodies.values() for body in per)
    counts: dict[str, int] = {"accepted": 0, "duplicates": 0, "rejected": 0, "http_errors": 0}
    lock = threading.Lock()

    def partner(platform: str) -> None:
        key_id, secret = keys[platform]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600) as client:
            for body in bodies[platform]:
                stamp, nonce = str(int(time.time())), secrets.token_hex(12)
                signature = sign(secret, "POST", ENDPOINT, stamp, nonce, body)
                r = client.post(
                    ENDPOINT,
                    content=body,
                    headers={
                        "content-type": "application/json",
                        "x-carbonbook-key": key_id,
                        "x-carbonbook-timestamp": stamp,
                        "x-carbonbook-nonce": nonce,
                        "x-carbonbook-signature": signature,
                    },
                )
                with lock:
                    if r.status_code != 200:
                        counts["http_errors"] += 1
                        continue
                    doc = r.json()
                    counts["accepted"] += doc["accepted"]
                    counts["duplicates"] += doc["duplicates"]
                    counts["rejected"] += len(doc["rejected"])

    server, port = _serve(url)
    try:
        timer = Timer()
        with ThreadPoolExecutor(len(bodies)) as pool:
            list(pool.map(partner, bodies))
        seconds = timer.seconds()
        server_rss = _peak_rss_of(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=60)
    return sent / seconds, counts, server_rss


def _peak_rss_of(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


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
        with fresh_database("sqlite", Path(tmp)) as url:
            http_rate, http_counts, server_rss = _http(url, path, people)
        rows.append(
            f"| sqlite, HTTP endpoint | {http_rate:,.0f} | | | {server_rss:.0f} MB (server) |"
        )
        notes.append(
            f"- sqlite over HTTP ({HTTP_BATCH:,} events a signed request, one client per partner, "
            f"`carbonbook serve` in its own process): {http_counts} ; goal "
            f"{'met' if http_rate >= HTTP_GOAL else 'MISSED'} >= {HTTP_GOAL:,}/s"
        )
    return "\n".join(
        [
            f"## Personal ingestion: {n:,} partner events, {people:,} people",
            "",
            (
                "Events per second over the whole file (lines read, screened, duplicates and caps "
                "applied, grams and points posted in one ledger batch per 2,000 events, event rows "
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
