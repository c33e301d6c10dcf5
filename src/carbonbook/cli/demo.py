"""Demo data: the people, firms and flows of the source article, on one ledger.

Two people earn grams and points from a month of green acts under Beijing's 绿色生活季
figures (shared bike 250 g/km, no cutlery 45.72 g, e-waybill 5 g); a steel works and a bus
group receive 2024 allowances; a fund deposits cash; the bus group sells surplus allowances
to the steel works against payment in one batch (delivery versus payment). Seeding is
idempotent: a second run finds the data and changes nothing.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from carbonbook.identity.model import Role
from carbonbook.identity.service import Identity
from carbonbook.ledger import AccountFlags, Batch, Ledger
from carbonbook.ledger import TransferRequest as T
from carbonbook.ledger.service import CORE_ASSETS

DEMO_PASSWORD = "carbonbook-demo"  # noqa: S105 - printed for the demo; never used elsewhere

REGISTRY_ASSETS = (
    ("CEA-2024", "t", "全国碳排放配额 2024 national allowance, tonnes"),
    ("BEA-2024", "t", "北京碳排放配额 2024 Beijing allowance, tonnes"),
    ("CCER", "t", "国家核证自愿减排量 CCER, tonnes"),
    ("PCER-BJ-2025", "t", "北京碳普惠减排量 2025 personal credits, tonnes"),
)

USERS: tuple[tuple[str, Role, str, str], ...] = (
    ("admin", Role.REGULATOR, "生态环境主管部门 Regulator", "regulator"),
    ("chen", Role.PERSON, "陈女士", "person:chen"),
    ("xu", Role.PERSON, "徐先生", "person:xu"),
    ("steel", Role.ENTERPRISE, "示例钢铁有限公司", "entity:demo-steel"),
    ("bus", Role.ENTERPRISE, "示例公交集团", "entity:demo-bus"),
    ("fund", Role.MEMBER, "绿色投资基金", "member:fund"),
    ("verifier", Role.VERIFIER, "第三方核查机构", "verifier:demo"),
)

# (behaviour, grams per unit in mg, unit quantity range) from bj-green-life@2023.
ACTS = (
    ("shared_bike", 250_000, (1, 6)),  # km
    ("no_cutlery", 45_720, (1, 2)),  # order
    ("e_waybill", 5_000, (1, 3)),  # parcel
)


def seed(engine: sa.Engine) -> dict[str, Any]:
    """Seed the demo once; returns what is there."""
    identity = Identity(engine)
    ledger = Ledger(engine)
    already = identity.find("admin") is not None
    if not already:
        _seed(identity, ledger)
    with engine.connect() as conn:
        counts = {
            name: int(conn.execute(sa.text(f"SELECT count(*) FROM {name}")).scalar_one())
            for name in ("users", "accounts", "journal")
        }
    return {
        "already_seeded": already,
        "users": counts["users"],
        "accounts": counts["accounts"],
        "batches": counts["journal"],
        "logins": [u[0] for u in USERS],
    }


def _seed(identity: Identity, ledger: Ledger) -> None:
    ledger.ensure_assets((*CORE_ASSETS, *REGISTRY_ASSETS))
    for username, role, name, owner in USERS:
        identity.register(username, DEMO_PASSWORD, role, display_name=name, owner=owner)
    for code, name in (
        ("bike-a", "共享单车平台 A"),
        ("delivery-b", "外卖平台 B"),
        ("logistics-c", "物流平台 C"),
    ):
        identity.register_partner(code, name)

    scheme_mg = ledger.open_account(
        "scheme:bj-green-life", "CO2E_MG", "issuer", AccountFlags.ISSUER
    )
    scheme_pt = ledger.open_account("scheme:bj-green-life", "POINT", "issuer", AccountFlags.ISSUER)
    bank = ledger.open_account("bank:settlement", "CNY", "issuer", AccountFlags.ISSUER)
    registry = ledger.open_account("registry:national", "CEA-2024", "issuer", AccountFlags.ISSUER)

    _personal_month(ledger, scheme_mg.id, scheme_pt.id)

    steel_cea = ledger.open_account("entity:demo-steel", "CEA-2024")
    bus_cea = ledger.open_account("entity:demo-bus", "CEA-2024")
    fund_cea = ledger.open_account("member:fund", "CEA-2024")
    steel_cny = ledger.open_account("entity:demo-steel", "CNY")
    bus_cny = ledger.open_account("entity:demo-bus", "CNY")
    fund_cny = ledger.open_account("member:fund", "CNY")
    # 预分配 (70 % pre-allocation) of 2024 allowances, tonnes.
    ledger.post(
        Batch(
            "registry",
            "demo-allocation-2024",
            [
                T.move(registry.id, steel_cea.id, "CEA-2024", 66_458, "allocation"),
                T.move(registry.id, bus_cea.id, "CEA-2024", 400_000, "allocation"),
            ],
        )
    )
    ledger.post(
        Batch(
            "bank",
            "demo-deposits",
            [
                T.move(bank.id, steel_cny.id, "CNY", 2_000_000_000, "deposit"),  # 20 m yuan
                T.move(bank.id, fund_cny.id, "CNY", 100_000_000, "deposit"),  # 1 m yuan
            ],
        )
    )
    # The bus group sells 20,000 t to the steel works at 68.00 yuan/t: both legs in one batch.
    ledger.post(
        Batch(
            "exchange",
            "demo-trade-1",
            [
                T.move(bus_cea.id, steel_cea.id, "CEA-2024", 20_000, "trade"),
                T.move(steel_cny.id, bus_cny.id, "CNY", 20_000 * 6_800, "trade"),
            ],
        )
    )
    ledger.post(
        Batch(
            "exchange",
            "demo-trade-2",
            [
                T.move(bus_cea.id, fund_cea.id, "CEA-2024", 1_000, "trade"),
                T.move(fund_cny.id, bus_cny.id, "CNY", 1_000 * 6_912, "trade"),
            ],
        )
    )


def _personal_month(ledger: Ledger, scheme_mg: int, scheme_pt: int) -> None:
    rng = random.Random(2023)  # noqa: S311 - reproducible demo data, not a secret
    start = datetime(2025, 10, 1, tzinfo=UTC)
    for person in ("chen", "xu"):
        mg = ledger.open_account(f"person:{person}", "CO2E_MG")
        points = ledger.open_account(f"person:{person}", "POINT")
        for day in range(30):
            moves = []
            day_mg = 0
            for behaviour, mg_per_unit, (low, high) in ACTS:
                if rng.random() < 0.6:
                    amount = mg_per_unit * rng.randint(low, high)
                    day_mg += amount
                    moves.append(
                        T.move(
                            scheme_mg,
                            mg.id,
                            "CO2E_MG",
                            amount,
                            behaviour,
                            key=f"demo-{person}-{day}-{behaviour}",
                        )
                    )
            if not moves:
                continue
            # 1 point per 100 g of the day's total, rounded half-up (bj-green-life@2023).
            day_points = (day_mg + 50_000) // 100_000
            if day_points:
                moves.append(T.move(scheme_pt, points.id, "POINT", day_points, "daily_points"))
            date = (start + timedelta(days=day)).date().isoformat()
            ledger.post(Batch("personal", f"demo-{person}-{date}", moves))
