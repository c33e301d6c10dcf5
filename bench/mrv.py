"""Enterprise MRV and compliance at scale: 10,000 facility reports and 10,000 entities.

One run per database, the same data, row-at-a-time beside the batched way:
- compute: the pure calculation of every report (no database);
- file: create, submit and verify each report (three transactions each, as the API does);
- lock: half the reports one transaction each (`Reports.lock`), half 500 to a transaction
  (`Reports.lock_many`); each lock sets the entity's obligation in the same transaction;
- allocate: one pre-allocation run for every entity (70 % of its verified emissions),
  computed, approved and issued in one transaction;
- settle: half the entities surrender one transaction each (`Compliance.surrender`), half
  through the deadline run (`Compliance.settle`, 500 entities to a transaction).
"""

from __future__ import annotations

import copy
import json
import random
import tempfile
from pathlib import Path
from typing import Any

from bench.common import Timer, fresh_database, peak_rss_mb, pg_url
from carbonbook.api.routes.mrv import reports_of
from carbonbook.db.engine import make_engine
from carbonbook.mrv.model import compute
from carbonbook.registry.allocations import Allocations
from carbonbook.registry.compliance import Compliance
from carbonbook.registry.service import Registry

EXAMPLE = Path(__file__).resolve().parents[1] / "tests" / "mrv" / "examples" / "steel-2024.json"
PERIOD = "national-2024"


def _documents(n: int) -> list[dict[str, Any]]:
    base = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    rng = random.Random(5)
    documents = []
    for i in range(n):
        d = copy.deepcopy(base)
        d["entity"] = {"id": f"e{i:05d}", "name": f"企业 {i}"}
        d["fuel_combustion"][0]["quantity"] = str(rng.randint(1_000, 20_000))
        d["process"][0]["quantity"] = str(rng.randint(10_000, 90_000))
        d["fixed_carbon_products"][0]["quantity"] = str(rng.randint(100_000, 400_000))
        documents.append(d)
    return documents


def run(args: Any) -> str:
    n = max(10, args.reports)
    backends = ["sqlite"] + (["postgres"] if pg_url() else [])
    documents = _documents(n)
    t = Timer()
    for d in documents:
        compute(d)
    t_s = t.seconds()
    compute_rate = n / t_s
    with tempfile.TemporaryDirectory() as tmp:
        rows = [_one(backend, Path(tmp), documents) for backend in backends]
    half = n // 2
    return "\n".join(
        [
            f"## MRV and compliance: {n:,} facility reports, {n:,} entities",
            "",
            (
                "Per second, wall clock. *row* = one transaction per report or entity (the API's "
                "path); *batch* = 500 to a transaction. Each lock sets the entity's obligation in "
                f"the same transaction. Lock and settle are measured on {half:,} reports/entities "
                "each way, on the same database."
            ),
            "",
            f"Pure computation of a report (no database): {compute_rate:,.0f} reports/s.",
            "",
            (
                "| database | file + submit + verify /s | lock row /s | lock batch /s "
                "| batch / row | allocate + issue /s | settle row /s | settle batch /s "
                "| batch / row | peak RSS |"
            ),
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            *rows,
        ]
    )


def _one(backend: str, work: Path, documents: list[dict[str, Any]]) -> str:
    n = len(documents)
    half = n // 2
    with fresh_database(backend, work) as url:
        engine = make_engine(url)
        reports = reports_of(engine)
        owners = [f"entity:{d['entity']['id']}" for d in documents]
        ids = []
        t_file = Timer()
        for owner, d in zip(owners, documents, strict=True):
            report = reports.create(owner, d, by="bench")
            reports.submit(report.id, owner, by="bench")
            reports.verify(report.id, verifier="verifier:bench")
            ids.append(report.id)
        t_file_s = t_file.seconds()
        t_row = Timer()
        for report_id in ids[:half]:
            reports.lock(report_id, by="mee")
        t_row_s = t_row.seconds()
        t_batch = Timer()
        reports.lock_many(ids[half:], by="mee", chunk=500)
        t_batch_s = t_batch.seconds()

        registry = Registry(engine)
        compliance = Compliance(registry)
        obligations = {
            line.position.owner: line.position.obligation_t for line in compliance.report(PERIOD)
        }
        allocations = Allocations(registry)
        t_alloc = Timer()
        pre = allocations.compute(
            "national-industry-2024",
            "pre",
            {o: {"verified_t": str(obligations[o])} for o in owners},
            by="li",
        )
        allocations.approve(pre.id, by="zhang")
        allocations.issue(pre.id, by="zhang")
        t_alloc_s = t_alloc.seconds()
        t_settle_row = Timer()
        for owner in owners[:half]:
            held = int(obligations[owner] * 7 // 10)
            compliance.surrender(PERIOD, owner, "CEA-2024", held, key=f"row:{owner}", by="bench")
        t_settle_row_s = t_settle_row.seconds()
        t_settle_batch = Timer()
        result = compliance.settle(PERIOD, by="mee", owners=owners[half:])
        t_settle_batch_s = t_settle_batch.seconds()
        problems = registry.verify()
        if result.surrendered_t <= 0 or problems:
            msg = f"the settlement went wrong: {result}, {problems[:3]}"
            raise RuntimeError(msg)
        engine.dispose()
    lock_row = half / t_row_s
    lock_batch = (n - half) / t_batch_s
    settle_row = half / t_settle_row_s
    settle_batch = (n - half) / t_settle_batch_s
    return (
        f"| {backend} | {n / t_file_s:,.0f} | {lock_row:,.0f} | {lock_batch:,.0f} | "
        f"{lock_batch / lock_row:.1f}x | {n / t_alloc_s:,.0f} | {settle_row:,.0f} | "
        f"{settle_batch:,.0f} | {settle_batch / settle_row:.1f}x | {peak_rss_mb():.0f} MB |"
    )
