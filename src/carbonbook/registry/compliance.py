"""Compliance (履约): obligations from verified emissions, the position all year, surrender
(清缴) with the offset cap, and the shortfall's penalty exposure per the scheme's rule.

The obligation of an entity for a period is its verified emissions in whole tonnes (locking an
entity's verified reports sets it, see `record_verified`; for an entity whose reports are not
kept here the regulator enters it, with its source). Under a power plan of
`allocation.toml` the obligation is capped (`_capped_in`, the one place every write of an
obligation goes through): the shortfall beyond the entity's allocation is at most the plan's
share (20 %) of verified emissions, and gas units owe nothing beyond their allocation; the
obligation's `cap` keeps the verified figure and the rule, so positions show both.
Surrendered units leave the entity for the registry's `surrendered` account, block by block,
so what was surrendered for a period is always a sum over registry operations.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from carbonbook import auditlog
from carbonbook.db.schema import (
    account_balances,
    allocation_lines,
    allocation_runs,
    compliance_obligations,
    registry_ops,
)
from carbonbook.ledger import AccountFlags
from carbonbook.ledger.service import now_us
from carbonbook.registry import allocation, errors
from carbonbook.registry.gate import REGISTRY_OWNER, check_text
from carbonbook.registry.service import (
    AWAITING_APPROVAL,
    DONE,
    MAX_TONNES,
    Operation,
    Registry,
    Retirement,
    same_operation,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
LOCKED_SOURCE = "locked mrv reports"  # how an obligation set by locking reports names its source

if TYPE_CHECKING:
    from datetime import date

    from carbonbook.registry.rules import Period, Scheme


@dataclass(frozen=True, slots=True)
class Position:
    """Where an entity stands for one period: positive is surplus, negative is deficit."""

    period: str
    owner: str
    obligation_t: int
    surrendered_allowances_t: int
    surrendered_offsets_t: int
    offset_limit_t: int
    allowances_held_t: int  # eligible allowances free to surrender
    offsets_held_t: int  # eligible offsets free to surrender
    deadline: date
    price_fen: int | None
    late_t: int = 0  # tonnes surrendered after the deadline (逾期清缴)
    # What the power sector's shortfall cap (履约缺口上限) or gas exemption did to the
    # obligation: the verified figure, the allocation, the rule; None when it stands uncapped.
    cap: dict[str, Any] | None = None

    @property
    def verified_t(self) -> int:
        """The verified emissions behind the obligation (before any shortfall cap)."""
        return self.obligation_t if self.cap is None else int(self.cap["verified_t"])

    @property
    def late(self) -> bool:
        """Whether any surrender for the period came after its deadline."""
        return self.late_t > 0

    @property
    def surrendered_t(self) -> int:
        return self.surrendered_allowances_t + self.surrendered_offsets_t

    @property
    def open_t(self) -> int:
        """Tonnes still to surrender."""
        return max(0, self.obligation_t - self.surrendered_t)

    @property
    def offset_room_t(self) -> int:
        """Offsets that may still be surrendered under the cap."""
        return max(0, self.offset_limit_t - self.surrendered_offsets_t)

    @property
    def usable_t(self) -> int:
        """Holdings that could be surrendered now: allowances plus offsets within the cap."""
        return self.allowances_held_t + min(self.offsets_held_t, self.offset_room_t)

    @property
    def position_t(self) -> int:
        return self.usable_t - self.open_t

    @property
    def value_fen(self) -> int | None:
        """The position at the market price: what a surplus is worth, a deficit costs."""
        return None if self.price_fen is None else self.position_t * self.price_fen

    @property
    def compliant(self) -> bool:
        return self.open_t == 0

    def to_document(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "owner": self.owner,
            "verified_t": self.verified_t,
            "obligation_t": self.obligation_t,
            "cap": self.cap,
            "surrendered_t": self.surrendered_t,
            "surrendered_allowances_t": self.surrendered_allowances_t,
            "surrendered_offsets_t": self.surrendered_offsets_t,
            "offset_limit_t": self.offset_limit_t,
            "offset_room_t": self.offset_room_t,
            "allowances_held_t": self.allowances_held_t,
            "offsets_held_t": self.offsets_held_t,
            "open_t": self.open_t,
            "position_t": self.position_t,
            "price_fen": self.price_fen,
            "value_fen": self.value_fen,
            "deadline": self.deadline.isoformat(),
            "compliant": self.compliant,
            "late": self.late,
            "late_t": self.late_t,
        }


@dataclass(frozen=True, slots=True)
class Settlement:
    """What the deadline run did."""

    period: str
    entities: int
    operations: int
    surrendered_t: int
    short_entities: int
    shortfall_t: int

    def to_document(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "entities": self.entities,
            "operations": self.operations,
            "surrendered_t": self.surrendered_t,
            "short_entities": self.short_entities,
            "shortfall_t": self.shortfall_t,
        }


@dataclass(frozen=True, slots=True)
class ComplianceLine:
    """One entity in the regulator's compliance report for a period."""

    position: Position
    penalty_min_fen: int | None
    penalty_max_fen: int | None
    deduct_next_year_t: int

    def to_document(self) -> dict[str, Any]:
        return {
            **self.position.to_document(),
            "shortfall_t": self.position.open_t,
            "penalty_min_fen": self.penalty_min_fen,
            "penalty_max_fen": self.penalty_max_fen,
            "deduct_next_year_t": self.deduct_next_year_t,
        }


class Compliance:
    """Obligations, positions and surrenders over one registry."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.rules = registry.rules
        self.engine = registry.engine

    # -- obligations ------------------------------------------------------------------------------

    def set_obligation(
        self, period_id: str, owner: str, verified_t: int, *, source: str, by: str
    ) -> None:
        """Record `owner`'s verified emissions for the period (audited). Lowering it below
        what was already surrendered is refused."""
        self.rules.period(period_id)
        if isinstance(verified_t, bool) or not isinstance(verified_t, int):
            raise errors.BadQuantityError("verified_t must be whole tonnes", "核查排放量须为整数吨")
        if not 0 <= verified_t <= MAX_TONNES:
            raise errors.BadQuantityError(
                f"verified_t must be 0 to {MAX_TONNES} t, not {verified_t}",
                f"核查排放量须在 0 至 {MAX_TONNES} 吨之间，而不是 {verified_t}",
            )
        source = source.strip()
        if not source or len(source) > 200:
            raise errors.RegistryError(
                "name the source of the figure (1 to 200 characters)",
                "请注明数据来源（1 至 200 字）",
            )
        with self.engine.begin() as conn:
            self._set_obligation_in(conn, period_id, owner, verified_t, source, by)

    def record_verified(
        self,
        conn: sa.Connection,
        *,
        owner: str,
        scheme: str,
        year: int,
        direct_tco2: Decimal,
        total_tco2: Decimal,
        source: str,
        by: str,
        sector: str | None = None,
    ) -> str | None:
        """Inside the caller's transaction (a report being locked): set the obligation of
        the scheme's period for `year` to the verified emissions within the scheme's boundary,
        in whole tonnes rounded half up. Returns the period, or None when the scheme has no
        period for that year or does not cover the report's sector in that year (no
        obligation: a steel works owed nothing to the national market before 2024)."""
        period = self.rules.period_for(scheme, year)
        if period is None or not self.rules.covers(scheme, sector, year):
            return None
        counted = direct_tco2 if self.rules.scheme_of(period).boundary == "direct" else total_tco2
        # Carbon fixed in products can outweigh a small works' emissions: owing less than
        # nothing is owing nothing.
        verified_t = max(0, int(counted.to_integral_value(ROUND_HALF_UP)))
        self._set_obligation_in(conn, period.id, owner, verified_t, source[:200], by)
        return period.id

    def record_verified_many(
        self,
        conn: sa.Connection,
        figures: list[tuple[str, str, int, Decimal, Decimal, str | None]],
        *,
        source: str,
        by: str,
    ) -> int:
        """`record_verified` for many entities at once, set-wise: per period one read of the
        existing obligations and of what was surrendered, one update, one insert and one
        audit entry. `figures` are (owner, scheme, year, direct tCO2, total tCO2, sector); as
        one by one, a sector the scheme does not cover that year owes nothing. Returns the
        obligations set."""
        by_period: dict[str, dict[str, int]] = {}
        for owner, scheme, year, direct, total, sector in figures:
            period = self.rules.period_for(scheme, year)
            if period is None or not self.rules.covers(scheme, sector, year):
                continue
            counted = direct if self.rules.scheme_of(period).boundary == "direct" else total
            by_period.setdefault(period.id, {})[owner] = max(
                0, int(counted.to_integral_value(ROUND_HALF_UP))
            )
        for period_id, verified in by_period.items():
            self._obligations_in(conn, period_id, verified, source[:200], by)
        return sum(len(v) for v in by_period.values())

    def _obligations_in(
        self, conn: sa.Connection, period_id: str, verified: dict[str, int], source: str, by: str
    ) -> None:
        owners = sorted(verified)
        capped = self._capped_in(conn, period_id, verified)
        done = dict(
            conn.execute(
                sa.select(registry_ops.c.from_owner, sa.func.sum(registry_ops.c.quantity))
                .where(
                    registry_ops.c.period == period_id,
                    registry_ops.c.from_owner.in_(owners),
                    registry_ops.c.kind == "surrender",
                    registry_ops.c.state == DONE,
                )
                .group_by(registry_ops.c.from_owner)
            ).all()
        )
        for owner in owners:
            if capped[owner][0] < int(done.get(owner, 0)):
                raise errors.ObligationLockedError(
                    f"{owner} already surrendered {done[owner]} t for {period_id}",
                    f"{owner} 已为 {period_id} 清缴 {done[owner]} 吨",
                )
        existing = set(
            conn.execute(
                sa.select(compliance_obligations.c.owner).where(
                    compliance_obligations.c.period == period_id,
                    compliance_obligations.c.owner.in_(owners),
                )
            ).scalars()
        )
        at = now_us()
        rows = [
            {
                "o": o,
                "verified_t": capped[o][0],
                "cap": capped[o][1],
                "source": source,
                "set_by": by,
                "set_at": at,
            }
            for o in owners
        ]
        if existing:
            conn.execute(
                compliance_obligations.update()
                .where(
                    compliance_obligations.c.period == period_id,
                    compliance_obligations.c.owner == sa.bindparam("o"),
                )
                .values(
                    verified_t=sa.bindparam("verified_t"),
                    cap=sa.bindparam("cap"),
                    source=sa.bindparam("source"),
                    set_by=sa.bindparam("set_by"),
                    set_at=sa.bindparam("set_at"),
                ),
                [r for r in rows if r["o"] in existing],
            )
        new = [
            {"period": period_id, "owner": r["o"], **{k: r[k] for k in r if k != "o"}}
            for r in rows
            if r["o"] not in existing
        ]
        if new:
            conn.execute(compliance_obligations.insert(), new)
        auditlog.append(
            conn,
            by,
            "compliance.obligation",
            f"{period_id}/*",
            {"verified_t": verified, "source": source},
        )

    def override_obligation(
        self, period_id: str, owner: str, verified_t: int, *, source: str, by: str
    ) -> Operation | None:
        """A regulator's entry of an obligation. Over one set by locked reports it is an
        override: it waits (a registry operation awaiting approval, nothing changed) for a
        second regulator (`approve_override`); otherwise it is set at once (None)."""
        self.rules.period(period_id)
        if isinstance(verified_t, bool) or not 0 <= verified_t <= MAX_TONNES:
            raise errors.BadQuantityError("verified_t out of range", "核查排放量超出范围")
        check_text(source, "source")
        with self.engine.begin() as conn:
            found = conn.execute(
                sa.select(compliance_obligations.c.source).where(
                    compliance_obligations.c.period == period_id,
                    compliance_obligations.c.owner == owner,
                )
            ).scalar()
            if found is None or not str(found).startswith(LOCKED_SOURCE):
                self._set_obligation_in(conn, period_id, owner, verified_t, source, by)
                return None
            op_id = conn.execute(
                registry_ops.insert()
                .values(
                    kind="obligation",
                    actor=REGISTRY_OWNER,
                    key=f"override:{period_id}:{owner}:{now_us()}"[:100],
                    asset=None,
                    quantity=verified_t,
                    from_owner=None,
                    to_owner=owner,
                    period=period_id,
                    role=None,
                    state=AWAITING_APPROVAL,
                    requested_by=by,
                    meta=json.dumps({"source": source, "replaces": found}, ensure_ascii=False),
                    created_at=now_us(),
                )
                .returning(registry_ops.c.id)
            ).scalar_one()
            auditlog.append(
                conn, by, "compliance.obligation.request", f"{period_id}/{owner}", {"op": op_id}
            )
            return self.registry.load_op_in(conn, int(op_id))

    def approve_override(self, op_id: int, *, by: str) -> Operation:
        """A second regulator approves an override of a locked report's obligation."""
        with self.engine.begin() as conn:
            op = self.registry.load_op_in(conn, op_id, lock=True)
            if op.kind != "obligation" or op.state != AWAITING_APPROVAL:
                raise errors.NotPendingError(
                    f"#{op_id} is not an obligation override awaiting approval",
                    f"#{op_id} 不是待审批的履约义务变更",
                )
            if op.requested_by == by:
                raise errors.SecondApproverError(
                    "a second regulator must approve this override, not the one who asked",
                    "变更须由另一名主管人员审批，申请人不能自行审批",
                )
            source = str(op.meta.get("source", "override"))
            self._set_obligation_in(conn, str(op.period), str(op.to_owner), op.quantity, source, by)
            conn.execute(
                registry_ops.update()
                .where(registry_ops.c.id == op_id)
                .values(state=DONE, decided_by=by, decided_at=now_us())
            )
            return self.registry.load_op_in(conn, op_id)

    def _set_obligation_in(
        self, conn: sa.Connection, period_id: str, owner: str, verified_t: int, source: str, by: str
    ) -> None:
        obligation_t, cap = self._capped_in(conn, period_id, {owner: verified_t})[owner]
        surrendered = sum(self._surrendered(conn, period_id, owner).values())
        if obligation_t < surrendered:
            raise errors.ObligationLockedError(
                f"{owner} already surrendered {surrendered} t for {period_id}",
                f"{owner} 已为 {period_id} 清缴 {surrendered} 吨",
            )
        values = {
            "verified_t": obligation_t,
            "cap": cap,
            "source": source,
            "set_by": by,
            "set_at": now_us(),
        }
        updated = conn.execute(
            compliance_obligations.update()
            .where(
                compliance_obligations.c.period == period_id,
                compliance_obligations.c.owner == owner,
            )
            .values(**values)
        ).rowcount
        if not updated:
            conn.execute(
                compliance_obligations.insert().values(period=period_id, owner=owner, **values)
            )
        auditlog.append(
            conn,
            by,
            "compliance.obligation",
            f"{period_id}/{owner}",
            {"verified_t": verified_t, "obligation_t": obligation_t, "source": source},
        )

    def _capped_in(
        self, conn: sa.Connection, period_id: str, verified: dict[str, int]
    ) -> dict[str, tuple[int, str | None]]:
        """The one place an obligation is derived from verified emissions: per owner, the
        obligation after the shortfall cap (履约缺口上限) and the exemption of gas units of the
        allocation plans issued for the period, and the JSON record of what was capped (None
        when the verified figure stands). Every write of an obligation goes through here.

        The allocation is the entity's issued final allowance under the period's capped plans,
        or its issued pre-allocation before the true-up; an entity with nothing issued under
        a capped plan owes its verified figure (the cap is applied when its allocation is
        issued, see `recap_in`). Two reads for the whole set, none for an uncapped period."""
        plans = {
            p.id: p
            for p in allocation.load_plans().values()
            if p.period == period_id and (p.shortfall_cap is not None or p.no_shortfall_categories)
        }
        result: dict[str, tuple[int, str | None]] = {o: (t, None) for o, t in verified.items()}
        if not plans or not verified:
            return result
        rows = conn.execute(
            sa.select(
                allocation_runs.c.id,
                allocation_runs.c.plan,
                allocation_runs.c.phase,
                allocation_lines.c.owner,
                allocation_lines.c.allocation_t,
                allocation_lines.c.inputs,
            )
            .select_from(
                allocation_lines.join(
                    allocation_runs, allocation_lines.c.run_id == allocation_runs.c.id
                )
            )
            .where(
                allocation_runs.c.plan.in_(sorted(plans)),
                allocation_runs.c.state == "issued",
                allocation_lines.c.owner.in_(sorted(verified)),
            )
            .order_by(allocation_runs.c.id)
        ).all()
        # Per owner and plan: the final allowance once trued up, else the pre-allocations.
        per_plan: dict[tuple[str, str], dict[str, int]] = {}
        latest: dict[str, tuple[str, str]] = {}  # owner -> (plan, inputs) of its latest run
        for r in rows:
            got = per_plan.setdefault((str(r.owner), str(r.plan)), {"pre": 0, "final": 0})
            got[str(r.phase)] += int(r.allocation_t)
            if r.phase == "final":
                got["final_seen"] = 1
            latest[str(r.owner)] = (str(r.plan), str(r.inputs))
        for owner, (plan_id, inputs) in latest.items():
            allocated = sum(
                got["final"] if got.get("final_seen") else got["pre"]
                for (o, _), got in per_plan.items()
                if o == owner
            )
            plan = plans[plan_id]
            categories = allocation.unit_categories(plan, json.loads(inputs))
            obligation_t, detail = allocation.capped_obligation(
                plan, verified[owner], allocated, categories
            )
            result[owner] = (
                obligation_t,
                None if detail is None else json.dumps(detail, ensure_ascii=False),
            )
        return result

    def recap_in(self, conn: sa.Connection, period_id: str, owners: list[str], by: str) -> None:
        """Inside the caller's transaction (an allocation run being issued): set again the
        obligations of `owners` for the period from their verified figures, so the cap follows
        the allocation now issued."""
        rows = conn.execute(
            sa.select(
                compliance_obligations.c.owner,
                compliance_obligations.c.verified_t,
                compliance_obligations.c.cap,
                compliance_obligations.c.source,
            ).where(
                compliance_obligations.c.period == period_id,
                compliance_obligations.c.owner.in_(sorted(owners)),
            )
        ).all()
        for r in rows:
            verified_t = int(r.verified_t) if r.cap is None else json.loads(r.cap)["verified_t"]
            self._set_obligation_in(conn, period_id, str(r.owner), verified_t, str(r.source), by)

    def periods_of(self, owner: str) -> list[str]:
        """The periods in which `owner` has an obligation, newest first."""
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    sa.select(compliance_obligations.c.period)
                    .where(compliance_obligations.c.owner == owner)
                    .order_by(compliance_obligations.c.period.desc())
                ).scalars()
            )

    def obligated(self, period_id: str) -> list[str]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    sa.select(compliance_obligations.c.owner)
                    .where(compliance_obligations.c.period == period_id)
                    .order_by(compliance_obligations.c.owner)
                ).scalars()
            )

    # -- position ---------------------------------------------------------------------------------

    def position(self, period_id: str, owner: str, *, price_fen: int | None = None) -> Position:
        period = self.rules.period(period_id)
        with self.engine.connect() as conn:
            return self._position(conn, period, owner, price_fen)

    def report(self, period_id: str, *, price_fen: int | None = None) -> list[ComplianceLine]:
        """Every obligated entity of the period, with its shortfall and penalty exposure."""
        period = self.rules.period(period_id)
        rule = self.rules.penalty_rules[self.rules.scheme_of(period).penalty_rule]
        lines = []
        with self.engine.connect() as conn:
            owners = conn.execute(
                sa.select(compliance_obligations.c.owner)
                .where(compliance_obligations.c.period == period_id)
                .order_by(compliance_obligations.c.owner)
            ).scalars()
            for owner in list(owners):
                pos = self._position(conn, period, owner, price_fen)
                exposure = rule.exposure(pos.open_t, price_fen)
                lines.append(
                    ComplianceLine(
                        pos,
                        None if exposure is None else exposure[0],
                        None if exposure is None else exposure[1],
                        pos.open_t if rule.deduct_next_year else 0,
                    )
                )
        return lines

    # -- surrender (清缴) -------------------------------------------------------------------------

    def surrender(
        self, period_id: str, owner: str, asset: str, quantity: int, *, key: str, by: str
    ) -> Operation:
        """Surrender `quantity` t of `asset` against `owner`'s obligation for the period.

        Refused, changing nothing, when the unit is not eligible for the period, when it
        would surrender more than is still open, or when offsets would pass the scheme's cap.
        """
        period = self.rules.period(period_id)
        scheme = self.rules.scheme_of(period)
        role = self.rules.role_in(period, asset)
        if role is None:
            raise errors.NotEligibleError(
                f"{asset} cannot be surrendered for {period_id}: it takes "
                f"{_eligible(scheme, period)}",
                f"{asset} 不能用于 {period_id} 的清缴：可用 {_eligible(scheme, period)}",
            )
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
            raise errors.BadQuantityError(
                f"quantity must be a positive whole number of tonnes, not {quantity!r}",
                f"数量须为正整数吨，而不是 {quantity!r}",
            )
        request = {"asset": asset, "quantity": quantity, "to_owner": None}

        def work(conn: sa.Connection) -> Operation:
            op_id = self._surrender_in(conn, period, role, owner, asset, quantity, key, by)
            return self.registry.load_op_in(conn, op_id)

        return self.registry.run_keyed(owner, key, "surrender", request, work, same_operation)

    def _surrender_in(
        self,
        conn: sa.Connection,
        period: Period,
        role: str,
        owner: str,
        asset: str,
        quantity: int,
        key: str,
        by: str,
    ) -> int:
        """Inside the caller's transaction: check the obligation and the cap, then retire."""
        period_id = period.id
        scheme = self.rules.scheme_of(period)
        obligation = conn.execute(
            sa.select(compliance_obligations.c.verified_t)
            .where(
                compliance_obligations.c.period == period_id,
                compliance_obligations.c.owner == owner,
            )
            .with_for_update()  # concurrent surrenders of one entity queue up here
        ).scalar()
        if obligation is None:
            raise errors.NoObligationError(
                f"{owner} has no verified emissions for {period_id}",
                f"{owner} 在 {period_id} 没有核查排放量",
            )
        done = self._surrendered(conn, period_id, owner)
        still_open = int(obligation) - sum(done.values())
        if quantity > still_open:
            raise errors.OverSurrenderError(
                f"{owner} has {max(still_open, 0)} t left to surrender for {period_id}, "
                f"{quantity} t offered",
                f"{owner} 在 {period_id} 尚需清缴 {max(still_open, 0)} 吨，提交了 {quantity} 吨",
            )
        if role == "offset":
            limit = scheme.offset_limit(int(obligation))
            room = limit - done.get("offset", 0)
            if quantity > room:
                share = f"{(scheme.offset_cap * 100).normalize():f} %"
                raise errors.OffsetCapExceededError(
                    f"offsets may cover at most {share} of the obligation ({limit} t); "
                    f"{done.get('offset', 0)} t already used, {quantity} t offered, "
                    f"{max(room, 0)} t left",
                    f"抵销比例不得超过应清缴量的 {share}（{limit} 吨）；已使用 "
                    f"{done.get('offset', 0)} 吨，本次 {quantity} 吨，剩余 {max(room, 0)} 吨",
                    limit_t=limit,
                    room_t=max(room, 0),
                )
            self._check_local_share(conn, scheme, period_id, owner, asset, quantity, limit)
        op_id = self.registry.retire_in(
            conn,
            kind="surrender",
            owner=owner,
            asset=asset,
            quantity=quantity,
            key=key,
            by=by,
            period=period_id,
            role=role,
        )
        auditlog.append(
            conn,
            by,
            "compliance.surrender",
            f"{period_id}/{owner}",
            {"op": op_id, "asset": asset, "quantity": quantity, "role": role},
        )
        return op_id

    def _check_local_share(
        self,
        conn: sa.Connection,
        scheme: Scheme,
        period_id: str,
        owner: str,
        asset: str,
        quantity: int,
        limit: int,
    ) -> None:
        """Beijing's rule: at least half of the offsets come from local projects, so offsets
        from elsewhere may fill at most the rest of the cap."""
        if scheme.local_offset_min_share is None:
            return
        unit, _ = self.rules.split_asset(asset)
        if unit.code in scheme.local_offset_types:
            return
        ceiling = _floor_share(limit, 1 - scheme.local_offset_min_share)
        used = sum(
            tonnes
            for used_asset, tonnes in self._surrendered_offsets(conn, period_id, owner).items()
            if self.rules.split_asset(used_asset)[0].code not in scheme.local_offset_types
        )
        if used + quantity > ceiling:
            share = f"{(scheme.local_offset_min_share * 100).normalize():f} %"
            local = ", ".join(scheme.local_offset_types)
            raise errors.LocalOffsetShareError(
                f"at least {share} of offsets must be local ({local}): offsets from "
                f"elsewhere may cover {ceiling} t, {used} t used, {quantity} t offered",
                f"抵销量中本地项目须不少于 {share}（{local}）：外地减排量最多 {ceiling} 吨，"
                f"已使用 {used} 吨，本次 {quantity} 吨",
                ceiling_t=ceiling,
                used_t=used,
            )

    def _surrendered_offsets(
        self, conn: sa.Connection, period_id: str, owner: str
    ) -> dict[str, int]:
        rows = conn.execute(
            sa.select(registry_ops.c.asset, sa.func.sum(registry_ops.c.quantity))
            .where(
                registry_ops.c.period == period_id,
                registry_ops.c.from_owner == owner,
                registry_ops.c.kind == "surrender",
                registry_ops.c.role == "offset",
                registry_ops.c.state == DONE,
            )
            .group_by(registry_ops.c.asset)
        )
        return {str(asset): int(total) for asset, total in rows}

    # -- the deadline settlement ------------------------------------------------------------------

    def settle(
        self,
        period_id: str,
        *,
        by: str,
        chunk: int = 500,
        owners: list[str] | None = None,
        at_us: int | None = None,
    ) -> Settlement:
        """The deadline run (强制清缴): for every obligated entity with tonnes still open,
        surrender its eligible allowances, oldest vintage first, up to what is open; then
        report the shortfalls.

        Entities go `chunk` to a transaction, set-wise: per chunk one read of the obligations
        (locked), one of what was surrendered, one of the free holdings, then one ledger batch
        and one pass over the blocks for all of the chunk's surrenders. A failure leaves
        nothing of its chunk applied. Each surrender is keyed by the entity's progress and the
        batch by the chunk's, so a rerun after a crash surrenders nothing twice.
        """
        period = self.rules.period(period_id)
        # 强制清缴 happens once the deadline has passed, never before: until then an entity
        # may still buy and surrender on its own.
        if (now_us() if at_us is None else at_us) < deadline_end_us(period):
            raise errors.DeadlineNotPassedError(
                f"the deadline of {period_id} ({period.deadline.isoformat()}) has not passed",
                f"{period_id} 的履约截止日（{period.deadline.isoformat()}）尚未届满",
            )
        assets = [
            self.rules.asset(unit, vintage)
            for vintage in sorted(period.allowance_vintages)
            for unit in self.rules.scheme_of(period).allowance_types
        ]
        owners = self.obligated(period_id) if owners is None else sorted(owners)
        size = max(1, chunk)
        surrendered_t = 0
        operations = 0
        for start in range(0, len(owners), size):
            with self.engine.begin() as conn:
                items, done = self._settle_plan(
                    conn, period_id, owners[start : start + size], assets
                )
                if not items:
                    continue
                self.registry.retire_many_in(
                    conn,
                    kind="surrender",
                    items=items,
                    batch_key=_chunk_key(period_id, items),
                    by=by,
                    period=period_id,
                    role="allowance",
                )
                auditlog.append(conn, by, "compliance.settle", f"{period_id}/*", done)
                surrendered_t += sum(done.values())
                operations += len(items)
        short: list[int] = []
        with self.engine.connect() as conn:
            for start in range(0, len(owners), size):
                part = owners[start : start + size]
                short.extend(t for t in self._open_many(conn, period_id, part).values() if t > 0)
        return Settlement(period_id, len(owners), operations, surrendered_t, len(short), sum(short))

    def _settle_plan(
        self, conn: sa.Connection, period_id: str, owners: list[str], assets: list[str]
    ) -> tuple[list[Retirement], dict[str, int]]:
        """What the deadline run surrenders for these entities: per entity and eligible asset,
        in order, the free tonnes up to what is still open. Three reads for the whole set."""
        # The obligation rows are locked here: the entities' own surrenders wait.
        progress = self._progress_many(conn, period_id, owners, lock=True)
        free = self._free_many(conn, [o for o, (t, _) in progress.items() if t > 0], assets)
        items: list[Retirement] = []
        done: dict[str, int] = {}
        for owner in dict.fromkeys(owners):  # a name given twice is settled once
            left, operations = progress.get(owner, (0, 0))
            for asset in assets:
                take = min(left, free.get((owner, asset), 0))
                if take <= 0:
                    continue
                # Unique per entity and progress: a rerun after a crash makes the same keys and
                # finds them done; after any surrender (the entity's own, or this run's) the
                # count has grown, so an obligation raised back to what was open before is new
                # work, not a replay of the first run's key.
                key = f"settle:{period_id}:{operations}:{asset}:{left}"
                items.append(Retirement(owner, asset, take, key))
                left -= take
                done[owner] = done.get(owner, 0) + take
        return items, done

    @classmethod
    def _open_many(
        cls, conn: sa.Connection, period_id: str, owners: list[str], *, lock: bool = False
    ) -> dict[str, int]:
        """Tonnes still to surrender per obligated entity among `owners` (two reads)."""
        return {
            o: t for o, (t, _) in cls._progress_many(conn, period_id, owners, lock=lock).items()
        }

    @staticmethod
    def _progress_many(
        conn: sa.Connection, period_id: str, owners: list[str], *, lock: bool = False
    ) -> dict[str, tuple[int, int]]:
        """Per obligated entity among `owners`: the tonnes still to surrender, and how many
        surrender operations it has had for the period (a count that only grows, whatever
        becomes of each operation: the deadline run's keys are made of it). Two reads."""
        if not owners:
            return {}
        query = (
            sa.select(compliance_obligations.c.owner, compliance_obligations.c.verified_t)
            .where(
                compliance_obligations.c.period == period_id,
                compliance_obligations.c.owner.in_(owners),
            )
            .order_by(compliance_obligations.c.owner)  # rows locked in one order: no deadlock
        )
        obligations = {
            str(owner): int(t)
            for owner, t in conn.execute(query.with_for_update() if lock else query)
        }
        if not obligations:
            return {}
        surrendered = sa.func.sum(
            sa.case((registry_ops.c.state == DONE, registry_ops.c.quantity), else_=0)
        )
        done = {
            owner: (int(t or 0), int(n))
            for owner, t, n in conn.execute(
                sa.select(registry_ops.c.from_owner, surrendered, sa.func.count())
                .where(
                    registry_ops.c.period == period_id,
                    registry_ops.c.from_owner.in_(sorted(obligations)),
                    registry_ops.c.kind == "surrender",
                )
                .group_by(registry_ops.c.from_owner)
            )
        }
        return {
            owner: (t - done.get(owner, (0, 0))[0], done.get(owner, (0, 0))[1])
            for owner, t in obligations.items()
        }

    @staticmethod
    def _free_many(
        conn: sa.Connection, owners: list[str], assets: list[str]
    ) -> dict[tuple[str, str], int]:
        """Free tonnes (balance less holds) per (entity, asset); a frozen account has none."""
        if not owners or not assets:
            return {}
        rows = conn.execute(
            sa.select(
                account_balances.c.owner,
                account_balances.c.asset,
                account_balances.c.balance,
                account_balances.c.held,
                account_balances.c.flags,
            ).where(
                account_balances.c.owner.in_(owners),
                account_balances.c.asset.in_(assets),
                account_balances.c.name == "main",
            )
        )
        return {
            (str(r.owner), str(r.asset)): 0
            if r.flags & AccountFlags.FROZEN
            else int(r.balance) - int(r.held)
            for r in rows
        }

    # -- internals --------------------------------------------------------------------------------

    def _surrendered(self, conn: sa.Connection, period_id: str, owner: str) -> dict[str, int]:
        rows = conn.execute(
            sa.select(registry_ops.c.role, sa.func.sum(registry_ops.c.quantity))
            .where(
                registry_ops.c.period == period_id,
                registry_ops.c.from_owner == owner,
                registry_ops.c.kind == "surrender",
                registry_ops.c.state == DONE,
            )
            .group_by(registry_ops.c.role)
        )
        return {str(role): int(total) for role, total in rows}

    def _position(
        self, conn: sa.Connection, period: Period, owner: str, price_fen: int | None
    ) -> Position:
        scheme = self.rules.scheme_of(period)
        found = conn.execute(
            sa.select(compliance_obligations.c.verified_t, compliance_obligations.c.cap).where(
                compliance_obligations.c.period == period.id,
                compliance_obligations.c.owner == owner,
            )
        ).first()
        obligation = None if found is None else found.verified_t
        cap = None if found is None or found.cap is None else json.loads(found.cap)
        done = self._surrendered(conn, period.id, owner)
        late = conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(registry_ops.c.quantity), 0)).where(
                registry_ops.c.period == period.id,
                registry_ops.c.from_owner == owner,
                registry_ops.c.kind == "surrender",
                registry_ops.c.state == DONE,
                registry_ops.c.created_at >= deadline_end_us(period),
            )
        ).scalar_one()
        allowances = offsets = 0
        for asset, balance, held in conn.execute(
            sa.select(
                account_balances.c.asset, account_balances.c.balance, account_balances.c.held
            ).where(account_balances.c.owner == owner, account_balances.c.name == "main")
        ):
            try:
                role = self.rules.role_in(period, asset)
            except errors.UnknownUnitError:
                continue
            free = int(balance) - int(held)
            if role == "allowance":
                allowances += free
            elif role == "offset":
                offsets += free
        obligation_t = int(obligation or 0)
        return Position(
            period.id,
            owner,
            obligation_t,
            done.get("allowance", 0),
            done.get("offset", 0),
            scheme.offset_limit(obligation_t),
            allowances,
            offsets,
            period.deadline,
            price_fen,
            int(late),
            cap,
        )


def deadline_end_us(period: Period) -> int:
    """The first microsecond after the deadline day, Beijing time (the deadline is a date)."""
    end = datetime.combine(period.deadline + timedelta(days=1), time(0), tzinfo=SHANGHAI)
    return int(end.timestamp()) * 1_000_000


def _chunk_key(period_id: str, items: list[Retirement]) -> str:
    """The ledger batch's idempotency key for one chunk of the deadline run: the period and a
    digest of the chunk's entities with what each surrenders from what was open (the same
    progress the operations' keys carry), so a rerun never posts a chunk twice."""
    digest = hashlib.sha256()
    for item in items:
        digest.update(f"{item.owner}\x1f{item.key}\x1f{item.quantity}\x1e".encode())
    return f"settle:{period_id}:{digest.hexdigest()[:32]}"


def _floor_share(tonnes: int, share: Decimal) -> int:
    return int((Decimal(tonnes) * share).to_integral_value(ROUND_FLOOR))


def _eligible(scheme: Scheme, period: Period) -> str:
    vintages = ", ".join(str(v) for v in period.allowance_vintages)
    return (
        f"allowances {'/'.join(scheme.allowance_types)} of {vintages} "
        f"and offsets {'/'.join(scheme.offset_types)}"
    )
