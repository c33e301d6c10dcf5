"""Demo data: the people, firms and flows of the source article, on one ledger.

Two people link three partner platforms, whose month of green acts arrives as a partner batch
quantified under Beijing's 绿色生活季 figures (shared bike 250 g/km, no cutlery 45.72 g,
e-waybill 5 g) and earns grams and points; a shelf of rewards waits for the points; a steel
works and a bus group receive 2024 allowances; a fund deposits cash; the bus group sells
surplus allowances to the steel works against payment in one batch (delivery versus
payment), serial blocks and all; a fund cancels CCER for a marathon and gets a certificate.
Seeding is idempotent: a second run finds the data and changes nothing.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from carbonbook.api.routes.mrv import reports_of
from carbonbook.exchange.auctions import Auctions
from carbonbook.exchange.bank import SimulatedBank, shanghai_day
from carbonbook.exchange.funds import Funds
from carbonbook.exchange.members import Members, credit_code_check
from carbonbook.exchange.service import Exchange
from carbonbook.identity.model import Role
from carbonbook.identity.service import Identity
from carbonbook.ledger import Batch, Ledger
from carbonbook.ledger import TransferRequest as T
from carbonbook.ledger.service import CORE_ASSETS, now_us
from carbonbook.methodology.registry import get as get_methodology
from carbonbook.mrv.monthly import MonthlyRecords
from carbonbook.personal.achievements import Achievements
from carbonbook.personal.rewards import Rewards, parse_catalogue
from carbonbook.personal.service import Personal
from carbonbook.registry.allocations import Allocations
from carbonbook.registry.compliance import Compliance
from carbonbook.registry.gate import RegisteredHolders
from carbonbook.registry.service import Registry

DEMO_PASSWORD = "carbonbook-demo"  # noqa: S105 - printed for the demo; never used elsewhere

USERS: tuple[tuple[str, Role, str, str], ...] = (
    ("admin", Role.REGULATOR, "生态环境主管部门 Regulator", "regulator"),
    ("reviewer", Role.REGULATOR, "主管部门复核人 Second reviewer", "regulator"),
    ("operator", Role.OPERATOR, "交易所运营 Exchange operator", "exchange:operator"),
    ("chen", Role.PERSON, "陈女士", "person:chen"),
    ("xu", Role.PERSON, "徐先生", "person:xu"),
    ("steel", Role.ENTERPRISE, "示例钢铁有限公司", "entity:demo-steel"),
    ("bus", Role.ENTERPRISE, "示例公交集团", "entity:demo-bus"),
    ("fund", Role.MEMBER, "绿色投资基金", "member:fund"),
    ("verifier", Role.VERIFIER, "第三方核查机构", "verifier:demo"),
    ("newco", Role.MEMBER, "新成立碳资产管理公司", "member:newco"),
)

# (behaviour, partner, unit, events a day, quantity per event): bj-green-life@2023 counts
# an order or a parcel one at a time, a ride in km.
ACTS = (
    ("shared_bike", "bike-a", "km", (1, 2), (1, 6)),
    ("no_cutlery", "delivery-b", "order", (1, 2), (1, 1)),
    ("e_waybill", "logistics-c", "parcel", (1, 3), (1, 1)),
)
SHANGHAI = ZoneInfo("Asia/Shanghai")


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
            for name in ("users", "accounts", "journal", "personal_events", "rewards")
        }
    return {
        "already_seeded": already,
        "users": counts["users"],
        "accounts": counts["accounts"],
        "batches": counts["journal"],
        "partner_events": counts["personal_events"],
        "rewards": counts["rewards"],
        "logins": [u[0] for u in USERS],
    }


def _seed(identity: Identity, ledger: Ledger) -> None:
    ledger.ensure_assets(CORE_ASSETS)
    for username, role, name, owner in USERS:
        identity.register(username, DEMO_PASSWORD, role, display_name=name, owner=owner)
    for code, name, behaviours in (
        ("bike-a", "共享单车平台 A", ("shared_bike",)),
        ("delivery-b", "外卖平台 B", ("no_cutlery",)),
        ("logistics-c", "物流平台 C", ("e_waybill",)),
    ):
        # Each partner's scope: the operator's choice of methodology, behaviours and evidence.
        identity.register_partner(
            code, name, methodology="bj-green-life@2023", behaviours=behaviours
        )

    _personal_month(ledger.engine)
    achievements = Achievements(ledger.engine)
    for person, shown in (("chen", "骑行的陈"), ("xu", None)):
        achievements.set_groups(
            person,
            actor="demo",
            display_name=shown,
            city="北京",
            organisation="示例公交集团",
            team="绿色通勤队",
        )
    achievements.award_all()
    Rewards(ledger.engine).put(parse_catalogue(REWARDS, "demo rewards"), actor="demo")
    _registry_year(ledger)
    _monthly_records(ledger.engine)
    _trading_accounts(ledger)

    # The bus group sells surplus allowances: units and cash in one batch (货银对付), the
    # serial blocks moving with the units.
    registry = Registry(ledger.engine, ledger, holders=RegisteredHolders())
    bus_cea = ledger.open_account("entity:demo-bus", "CEA-2024")
    bus_cny = ledger.open_account("entity:demo-bus", "CNY")
    for key, buyer, tonnes, price_fen in (
        ("demo-trade-1", "entity:demo-steel", 20_000, 6_800),
        ("demo-trade-2", "member:fund", 1_000, 6_912),
    ):
        buyer_cea = ledger.open_account(buyer, "CEA-2024")
        buyer_cny = ledger.open_account(buyer, "CNY")
        legs = [
            T.move(bus_cea.id, buyer_cea.id, "CEA-2024", tonnes, "trade"),
            T.move(buyer_cny.id, bus_cny.id, "CNY", tonnes * price_fen, "trade"),
        ]
        with ledger.engine.begin() as conn:
            registry.settle_in(
                conn,
                Batch("exchange", key, legs),
                [("CEA-2024", bus_cea.id, buyer_cea.id, tonnes)],
            )
    # The trading hall's practice market (the national rules around the clock, practice
    # units and practice cash granted to each member) has a book: the fund lists 300 t, the
    # steel works bids for 1,000 t below it.
    members = Members(ledger.engine)
    exchange = Exchange(ledger.engine, ledger, settle=registry.settle_in, admit=members.admit)
    for owner, side, price, tonnes in (
        ("member:fund", "sell", 6_850, 300),
        ("entity:demo-steel", "buy", 6_750, 1_000),
    ):
        exchange.place(
            owner=owner,
            market_id="practice",
            instrument="CEA-PRACTICE",
            side=side,
            price_fen=price,
            quantity=tonnes,
            key=f"demo-{side}",
            by=owner,
        )
    # One-sided bidding (单向竞价): the bus group offers 2,000 t for a week, uniform price.
    now = datetime.now(SHANGHAI)
    Auctions(ledger.engine, ledger, settle=registry.settle_in, admit=members.admit).announce(
        seller="entity:demo-bus",
        market_id="practice",
        instrument="CEA-PRACTICE",
        quantity=2_000,
        reserve_fen=6_600,
        pricing="uniform",
        opens_at=now - timedelta(minutes=1),
        closes_at=now + timedelta(days=7),
        key="demo-auction",
        by="bus",
    )
    # A new member's trading-account application waits on the exchange desk (KYC).
    body = "91110000MA0000004"
    members.apply(
        owner="member:newco",
        kind="legal_person",
        entity_name="新成立碳资产管理公司",
        identifier=body + credit_code_check(body),
        by="newco",
    )


# (user, owner, entity, credit code's first 17 characters, bank account, cash at the bank in
# fen, deposit in fen): the firms open trading accounts (KYC by the exchange's operator), bind
# their own bank accounts and deposit through the simulated settlement bank.
TRADERS = (
    (
        "steel",
        "entity:demo-steel",
        "示例钢铁有限公司",
        "91110000MA0000001",
        "6222020200000001001",
        5_000_000_000,
        2_000_000_000,
    ),
    (
        "bus",
        "entity:demo-bus",
        "示例公交集团",
        "91110000MA0000002",
        "6222020200000001002",
        500_000_000,
        0,
    ),
    (
        "fund",
        "member:fund",
        "绿色投资基金",
        "91110000MA0000003",
        "6222020200000001003",
        300_000_000,
        100_000_000,
    ),
)


def _trading_accounts(ledger: Ledger) -> None:
    """Trading accounts, bank bindings and deposits; the day reconciled with the bank."""
    members = Members(ledger.engine)
    bank = SimulatedBank(ledger.engine)
    funds = Funds(ledger.engine, ledger, bank, members=members)
    for user, owner, name, body, bank_no, at_bank, deposit in TRADERS:
        account = members.apply(
            owner=owner,
            kind="legal_person",
            entity_name=name,
            identifier=body + credit_code_check(body),
            by=user,
        )
        members.review(account.id, approve=True, reason=None, by="operator")
        bank.open_account(bank_no, name, at_bank)
        funds.bind(owner=owner, account_no=bank_no, holder=name, by=user)
        if deposit:
            funds.deposit(owner=owner, amount_fen=deposit, key="demo-deposit", by=user)
    funds.reconcile(shanghai_day(now_us()), by="operator")


def _fixed(at_us: int) -> Callable[[], int]:
    """A clock stopped at `at_us`: the demo files each month when it was due."""
    return lambda: at_us


def _monthly_records(engine: sa.Engine) -> None:
    """The steel works' 2025 monthly records (月度存证) of its coal line with lab reports:
    January-September on time, October filed after its 40-day deadline (late); each month's
    sample analysed for carbon, hydrogen, sulphur and moisture, July's carbon flagged."""
    pdf = b"%PDF-1.4\n% carbonbook demo lab report\n%%EOF\n"
    for month in range(1, 11):
        filed = datetime(2025, month + 1, 5, 10, tzinfo=SHANGHAI)
        if month == 10:
            filed = datetime(2025, 12, 20, 10, tzinfo=SHANGHAI)  # the deadline was 12-10
        at_us = int(filed.timestamp() * 1_000_000)
        report_no = f"CQJL-2025-{month:02d}-017"
        MonthlyRecords(engine, clock=_fixed(at_us)).file(
            "entity:demo-steel",
            {
                "format": "carbonbook.mrv.month/1",
                "entity": {"id": "demo-steel", "name": "示例钢铁有限公司"},
                "facility": "main-works",
                "year": 2025,
                "month": month,
                "methodology": "gbt-32151.5-2015",
                "line": "coal-1",
                "category": "fuel_combustion",
                "name": "bituminous_coal",
                "quantity": str(800 + 5 * month),
                "unit": "t",
                "parameters": {
                    "ncv_gj_per_unit": {"value": "23.204", "lab_report": report_no},
                    "carbon_content_tc_per_gj": {"value": "0.02618", "lab_report": report_no},
                    # The same sample's as-received analysis (收到基): 0.02618 x 23.204 gives
                    # 60.75 % carbon; July's lab figure is off by more than the tolerance.
                    **{
                        key: {"value": value, "lab_report": report_no}
                        for key, value in (
                            ("carbon_pct_ar", "58.1" if month == 7 else "60.6"),
                            ("hydrogen_pct_ar", "3.8"),
                            ("sulphur_pct_ar", "0.9"),
                            ("moisture_pct_ar", "9.5"),
                        )
                    },
                },
                "lab_reports": [
                    {
                        "report_no": report_no,
                        "lab": "示例煤质检测中心 (demo)",
                        "accreditation": "CNAS L0000",
                        "sample_date": f"2025-{month:02d}-15",
                        "report_date": f"2025-{month:02d}-28",
                        "file": f"{report_no}.pdf",
                    }
                ],
            },
            {f"{report_no}.pdf": pdf},
            by="steel",
        )


def _registry_year(ledger: Ledger) -> None:
    """The 2024 compliance year: the steel works is pre-allocated 70 % of its 2023 verified
    emissions (computed by one regulator, approved by another, issued), files its 2024 report,
    which the verifier verifies and the regulator locks (its obligation); the true-up waits
    for approval. The bus group's obligation to the Beijing pilot (beijing-2025) is entered
    by hand. A fund's CCER and a voluntary
    cancellation (注销) with its certificate."""
    registry = Registry(ledger.engine, ledger, holders=RegisteredHolders())
    allocations = Allocations(registry)
    pre = allocations.compute(
        "national-industry-2024",
        "pre",
        {"entity:demo-steel": {"verified_t": "31900"}},  # 2023 verified, direct (illustrative)
        by="admin",
    )
    allocations.approve(pre.id, by="reviewer")
    allocations.issue(pre.id, by="reviewer")

    reports = reports_of(ledger.engine, ledger)
    report = reports.create("entity:demo-steel", STEEL_REPORT_2024, by="steel")
    reports.submit(report.id, "entity:demo-steel", by="steel")
    reports.verify(report.id, verifier="verifier:demo", opinion="与能源台账、发票和化验报告一致")
    reports.lock(report.id, by="admin")
    coking = {**STEEL_REPORT_2024, "facility": "coking-plant", "year": 2025}
    coking = {**coking, "process": [], "fixed_carbon_products": []}
    draft = reports.create("entity:demo-steel", coking, by="steel")
    reports.submit(draft.id, "entity:demo-steel", by="steel")  # waits for the verifier
    allocations.compute("national-industry-2024", "final", {"entity:demo-steel": {}}, by="admin")

    # The bus group is a Beijing pilot entity (the pilot covers public transport, registry.toml
    # [[coverage]]; the national market does not): its 履约 is owed to the pilot's period.
    Compliance(registry).set_obligation(
        "beijing-2025",
        "entity:demo-bus",
        380_000,
        source="Beijing pilot verified report entered by the regulator",
        by="admin",
    )
    for owner, unit, vintage, tonnes in (
        ("entity:demo-bus", "CEA", 2024, 400_000),
        ("entity:demo-steel", "CCER", 2024, 6_000),
        ("member:fund", "CCER", 2024, 5_000),
    ):
        registry.issue(
            unit_type=unit,
            vintage=vintage,
            to_owner=owner,
            quantity=tonnes,
            key=f"demo-{owner}-{unit}-{vintage}",
            by="admin",
        )
    registry.cancel(
        owner="member:fund",
        asset="CCER-2024",
        quantity=120,
        beneficiary="2026 北京马拉松 Beijing Marathon",
        reason="赛事碳中和 carbon-neutral event",
        key="demo-cancel-marathon",
        by="fund",
    )


def _personal_month(engine: sa.Engine) -> None:
    """Thirty days of partner events up to yesterday, ingested as a partner batch would be."""
    rng = random.Random(2023)  # noqa: S311 - reproducible demo data, not a secret
    today = datetime.now(SHANGHAI).replace(hour=0, minute=0, second=0, microsecond=0)
    lines = []
    for person in ("chen", "xu"):
        for day in range(30, 0, -1):
            for behaviour, platform, unit, (least, most), (low, high) in ACTS:
                if rng.random() >= 0.6:
                    continue
                for n in range(rng.randint(least, most)):
                    at = today - timedelta(days=day, hours=-rng.randint(7, 21), minutes=n)
                    lines.append(
                        json.dumps(
                            {
                                "platform": platform,
                                "event_id": f"demo-{person}-{day}-{behaviour}-{n}",
                                "person": person,
                                "behaviour": behaviour,
                                "quantity": str(rng.randint(low, high)),
                                "unit": unit,
                                "occurred_at": at.isoformat(),
                            }
                        )
                    )
    personal = Personal(engine)
    for person in ("chen", "xu"):
        for platform in ("bike-a", "delivery-b", "logistics-c"):
            personal.link_platform(person, platform)
    personal.ingest_lines(lines, get_methodology("bj-green-life@2023"))


# The demo's shelf (积分商城): what a city scheme's partners typically offer for points.
# The steel works' 2024 report: the MRV example of ../shared/examples (tests/mrv/examples).
STEEL_REPORT_2024: dict[str, Any] = {
    "format": "carbonbook.mrv.report/1",
    "entity": {"id": "demo-steel", "name": "示例钢铁有限公司"},
    "facility": "main-works",
    "year": 2024,
    "sector": "steel",
    "methodology": "gbt-32151.5-2015",
    "fuel_combustion": [
        {
            "fuel": "bituminous_coal",
            "quantity": "10000",
            "unit": "t",
            "ncv_gj_per_unit": "23.204",
            "carbon_content_tc_per_gj": "0.02618",
            "oxidation_rate": "0.93",
        },
        {
            "fuel": "natural_gas",
            "quantity": "100",
            "unit": "10^4Nm3",
            "ncv_gj_per_unit": "389.31",
            "carbon_content_tc_per_gj": "0.01532",
            "oxidation_rate": "0.99",
        },
    ],
    "process": [
        {
            "material": "limestone",
            "quantity": "50000",
            "unit": "t",
            "factor_tco2_per_unit": "0.440",
        },
        {"material": "electrode", "quantity": "800", "unit": "t", "factor_tco2_per_unit": "3.663"},
    ],
    "fixed_carbon_products": [
        {
            "product": "crude_steel",
            "quantity": "1000000",
            "unit": "t",
            "factor_tco2_per_unit": "0.0154",
        }
    ],
    "electricity": {
        "purchased_mwh": "100000",
        "exported_mwh": "0",
        "grid_factor_tco2_per_mwh": "0.5703",
    },
    "heat": {"purchased_gj": "50000", "exported_gj": "0", "factor_tco2_per_gj": "0.11"},
}

REWARDS = """
[[reward]]
id = "bike-month-card"
title_zh = "共享单车月卡"
title_en = "Shared-bike monthly card"
sponsor = "bike-a"
points = 60
stock = 50
valid_from = 2025-01-01
valid_until = 2030-12-31
voucher_days = 30

[[reward]]
id = "transit-credit"
title_zh = "公交地铁乘车券 5 元"
title_en = "Transit credit, 5 yuan"
sponsor = "metro"
points = 40
stock = 200
valid_from = 2025-01-01
valid_until = 2030-12-31
voucher_days = 14

[[reward]]
id = "school-meal"
title_zh = "为山区学生捐一份午餐"
title_en = "Donate a school meal"
sponsor = "charity"
points = 20
stock = 1000
valid_from = 2025-01-01
valid_until = 2030-12-31
voucher_days = 1
"""
