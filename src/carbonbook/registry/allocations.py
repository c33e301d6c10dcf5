"""Allocation runs: computed by a regulator, approved by a second one, issued in one
transaction through the registry.

A `pre` run issues the plan's pre-allocation share (70 %) of the allowance computed on the
base year's inputs; a `final` run computes the allowance on the verified inputs and issues
the true-up, the final allowance minus what that entity was pre-allocated under the plan.
For the verified-emissions method the final input is the entity's locked report: its
obligation for the plan's period.

A pre-allocation above the final figure is excess, and issuing the final run claws it back in
the same transaction: the entity's free units of the plan's allowance go back to the issuer
(`Registry.claw_back_in`, serials marked returned). What it no longer holds (sold,
surrendered) stays owed and, by the rule in `allocation.toml` (`[clawback]`), is deducted from
its next allocation of the same unit type: a later run's line issues that much less and says
so (`debt_deducted_t`). The run document shows per line what was clawed back and what was
left outstanding.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from carbonbook import auditlog
from carbonbook.db.ids import allocate_ids
from carbonbook.db.schema import (
    allocation_lines,
    allocation_runs,
    compliance_obligations,
    registry_ops,
)
from carbonbook.errors import NotFoundError, PermissionDeniedError
from carbonbook.ledger.service import now_us
from carbonbook.registry import allocation
from carbonbook.registry.compliance import Compliance
from carbonbook.registry.errors import RegistryError
from carbonbook.registry.gate import REGISTRY_OWNER
from carbonbook.registry.service import DONE, MAX_TONNES, Registry

PHASES = ("pre", "final")
_JOINED = allocation_lines.join(allocation_runs, allocation_lines.c.run_id == allocation_runs.c.id)
MAX_ENTITIES = 20_000


class AllocationStateError(RegistryError):
    code = "ALLOCATION_STATE"
    http_status = 409


@dataclass(frozen=True, slots=True)
class Line:
    owner: str
    inputs: dict[str, Any]
    parts: dict[str, str]
    allocation_t: int
    already_t: int
    issue_t: int
    excess_t: int
    issue_op: int | None
    # Unreturned excess of earlier true-ups, deducted from this issuance (already out of
    # issue_t; kept in `parts` as the lineage of the figure).
    debt_deducted_t: int = 0
    # Once a final run is issued: the excess taken back, and what was left owed.
    clawed_back_t: int | None = None
    outstanding_t: int | None = None
    clawback_op: int | None = None

    def to_document(self) -> dict[str, Any]:
        return {
            "owner": self.owner,
            "inputs": self.inputs,
            "parts": self.parts,
            "allocation_t": self.allocation_t,
            "already_t": self.already_t,
            "issue_t": self.issue_t,
            "excess_t": self.excess_t,
            "issue_op": self.issue_op,
            "debt_deducted_t": self.debt_deducted_t,
            "clawed_back_t": self.clawed_back_t,
            "outstanding_t": self.outstanding_t,
            "clawback_op": self.clawback_op,
        }


@dataclass(frozen=True, slots=True)
class Run:
    id: int
    plan: str
    phase: str
    state: str
    created_by: str
    decided_by: str | None
    reason: str | None
    lines: tuple[Line, ...]

    @property
    def total_issue_t(self) -> int:
        return sum(line.issue_t for line in self.lines)

    @property
    def total_clawed_back_t(self) -> int:
        return sum(line.clawed_back_t or 0 for line in self.lines)

    @property
    def total_outstanding_t(self) -> int:
        return sum(line.outstanding_t or 0 for line in self.lines)

    def to_document(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "plan": self.plan,
            "phase": self.phase,
            "state": self.state,
            "created_by": self.created_by,
            "decided_by": self.decided_by,
            "reason": self.reason,
            "total_issue_t": self.total_issue_t,
            "total_excess_t": sum(line.excess_t for line in self.lines),
            "total_clawed_back_t": self.total_clawed_back_t,
            "total_outstanding_t": self.total_outstanding_t,
            "total_debt_deducted_t": sum(line.debt_deducted_t for line in self.lines),
            "unreturned_excess": allocation.clawback_rule().unreturned,
            "lines": [line.to_document() for line in self.lines],
        }


class Allocations:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.engine = registry.engine

    def compute(
        self, plan_id: str, phase: str, entities: dict[str, dict[str, Any]], *, by: str
    ) -> Run:
        """Compute a run; refused whole, naming the entity and field, if any input is bad or
        an entity already has a live run of this plan and phase."""
        plan = allocation.plan(plan_id)
        if phase not in PHASES:
            raise allocation.AllocationInputError(
                f"phase must be pre or final, not {phase!r}",
                f"阶段须为 pre 或 final，而不是 {phase!r}",
            )
        if not entities or len(entities) > MAX_ENTITIES:
            raise allocation.AllocationInputError(
                f"give 1 to {MAX_ENTITIES} entities", f"请提供 1 至 {MAX_ENTITIES} 个单位"
            )
        with self.engine.begin() as conn:
            busy = self._busy(conn, plan_id, phase, list(entities))
            if busy:
                raise AllocationStateError(
                    f"{busy[0]} already has a {phase} run of {plan_id}: reject it first",
                    f"{busy[0]} 已有 {plan_id} 的 {phase} 分配，请先驳回",
                )
            debts = self._debts(conn, plan.unit_type, list(entities))
            lines = [
                self._line(conn, plan, phase, owner, inputs, debts.get(owner, 0))
                for owner, inputs in entities.items()
            ]
            run_id = allocate_ids(conn)
            conn.execute(
                allocation_runs.insert().values(
                    id=run_id,
                    plan=plan_id,
                    phase=phase,
                    state="computed",
                    created_by=by,
                    created_at=now_us(),
                )
            )
            conn.execute(
                allocation_lines.insert(),
                [
                    {
                        "run_id": run_id,
                        "owner": line.owner,
                        "inputs": json.dumps(line.inputs, ensure_ascii=False, sort_keys=True),
                        "parts": json.dumps(line.parts, ensure_ascii=False, sort_keys=True),
                        "allocation_t": line.allocation_t,
                        "already_t": line.already_t,
                        "issue_t": line.issue_t,
                        "excess_t": line.excess_t,
                    }
                    for line in lines
                ],
            )
            auditlog.append(
                conn,
                by,
                "allocation.compute",
                f"allocation:{run_id}",
                {"plan": plan_id, "phase": phase, "entities": len(lines)},
            )
            return self._get(conn, run_id)

    def approve(self, run_id: int, *, by: str) -> Run:
        """The second regulator's review: one who computed a run cannot approve it."""
        with self.engine.begin() as conn:
            run = self._get(conn, run_id, lock=True)
            self._require(run, "computed", "approve")
            if by == run.created_by:
                raise PermissionDeniedError(
                    "a run is approved by someone other than who computed it",
                    "分配结果须由计算人以外的人审核",
                )
            self._decide(conn, run_id, "approved", by, None)
            return self._get(conn, run_id)

    def reject(self, run_id: int, *, by: str, reason: str) -> Run:
        reason = reason.strip()
        if not reason:
            raise allocation.AllocationInputError("give a reason", "请说明理由")
        with self.engine.begin() as conn:
            run = self._get(conn, run_id, lock=True)
            self._require(run, "computed", "reject")
            self._decide(conn, run_id, "rejected", by, reason[:500])
            return self._get(conn, run_id)

    def issue(self, run_id: int, *, by: str) -> Run:
        """Issue every line of an approved run in one transaction; a retry does nothing.

        A final run also claws back each entity's excess pre-allocation, as far as the
        entity holds free units of the plan's allowance; the rest stays owed (see the module's
        docstring)."""
        with self.engine.begin() as conn:
            run = self._get(conn, run_id, lock=True)
            if run.state == "issued":
                return run
            self._require(run, "approved", "issue")
            plan = allocation.plan(run.plan)
            asset = self.registry.rules.asset(plan.unit_type, plan.vintage)
            self._check_debts(conn, run, plan.unit_type)
            for line in run.lines:
                if line.excess_t > 0:
                    self._claw_back(conn, run, line, asset, by)
                if line.issue_t <= 0:
                    continue
                op_id = self.registry.issue_in(
                    conn,
                    asset=asset,
                    to_owner=line.owner,
                    quantity=line.issue_t,
                    key=f"allocation:{run_id}:{line.owner}",
                    by=by,
                    note=f"{run.plan} {run.phase}",
                )
                conn.execute(
                    allocation_lines.update()
                    .where(
                        allocation_lines.c.run_id == run_id,
                        allocation_lines.c.owner == line.owner,
                    )
                    .values(issue_op=op_id)
                )
            conn.execute(
                allocation_runs.update()
                .where(allocation_runs.c.id == run_id)
                .values(state="issued", issued_at=now_us())
            )
            if plan.shortfall_cap is not None or plan.no_shortfall_categories:
                # The obligations of the period follow the allocation now issued: the
                # shortfall cap (履约缺口上限) is a share beyond it.
                Compliance(self.registry).recap_in(
                    conn, plan.period, [line.owner for line in run.lines], by
                )
            issued = self._get(conn, run_id)
            auditlog.append(
                conn,
                by,
                "allocation.issue",
                f"allocation:{run_id}",
                {
                    "asset": asset,
                    "tonnes": issued.total_issue_t,
                    "clawed_back_t": issued.total_clawed_back_t,
                    "outstanding_t": issued.total_outstanding_t,
                },
            )
            return issued

    def _claw_back(self, conn: sa.Connection, run: Run, line: Line, asset: str, by: str) -> None:
        """Take `line`'s excess back, as far as the entity holds it free. A frozen account
        returns nothing (the ledger moves nothing out of it): all of it stays owed."""
        found = self.registry.ledger.find_account_in(conn, line.owner, asset)
        free = 0 if found is None or found.is_frozen else found.available
        back = min(line.excess_t, free)
        op_id = None
        if back > 0:
            op_id = self.registry.claw_back_in(
                conn,
                owner=line.owner,
                asset=asset,
                quantity=back,
                key=_clawback_key(run.id, line.owner),
                by=by,
                note=f"{run.plan} excess pre-allocation",
            )
        auditlog.append(
            conn,
            by,
            "allocation.clawback",
            f"allocation:{run.id}/{line.owner}",
            {
                "asset": asset,
                "excess_t": line.excess_t,
                "clawed_back_t": back,
                "outstanding_t": line.excess_t - back,
                "unreturned": allocation.clawback_rule().unreturned,
                "op": op_id,
            },
        )

    def debt(self, owner: str, unit_type: str) -> int:
        """Tonnes of `unit_type` that `owner` still owes from excess pre-allocations it could
        not return, less what later runs (issued or waiting to be) deduct."""
        with self.engine.connect() as conn:
            return self._debts(conn, unit_type, [owner]).get(owner, 0)

    def get(self, run_id: int) -> Run:
        with self.engine.connect() as conn:
            return self._get(conn, run_id)

    def runs(self, *, plan: str | None = None, limit: int = 100) -> list[Run]:
        query = sa.select(allocation_runs.c.id).order_by(allocation_runs.c.id.desc()).limit(limit)
        if plan is not None:
            query = query.where(allocation_runs.c.plan == plan)
        with self.engine.connect() as conn:
            return [self._get(conn, run_id) for run_id in conn.execute(query).scalars()]

    # -- internals --------------------------------------------------------------------------------

    def _line(
        self,
        conn: sa.Connection,
        plan: allocation.Plan,
        phase: str,
        owner: str,
        inputs: dict[str, Any],
        debt_t: int,
    ) -> Line:
        if not isinstance(inputs, dict):
            raise allocation.AllocationInputError(
                f"{owner}: inputs must be an object", f"{owner}：输入必须是对象"
            )
        given = dict(inputs)
        if plan.method == "verified_emissions" and phase == "final" and "verified_t" not in given:
            verified = self._verified(conn, plan.period, owner)
            given["verified_t"] = str(verified)
        result = allocation.allocate(plan, given, owner)
        if result.tonnes > MAX_TONNES:
            raise allocation.AllocationInputError(
                f"{owner}: {result.tonnes} t is beyond the registry's limit",
                f"{owner}：{result.tonnes} 吨超出登记上限",
            )
        if phase == "pre":
            pre = allocation.pre_allocation(plan, result)
            parts = {**result.parts, "share": str(plan.pre_allocation_share)}
            deducted = min(debt_t, pre)
            if deducted:
                parts["debt_deducted_t"] = str(deducted)
            return Line(owner, given, parts, pre, 0, pre - deducted, 0, None, deducted)
        already = self._pre_allocated(conn, plan.id, owner)
        true_up = max(0, result.tonnes - already)
        deducted = min(debt_t, true_up)
        parts = dict(result.parts)
        if deducted:
            parts["debt_deducted_t"] = str(deducted)
        return Line(
            owner,
            given,
            parts,
            result.tonnes,
            already,
            true_up - deducted,
            max(0, already - result.tonnes),
            None,
            deducted,
        )

    @staticmethod
    def _verified(conn: sa.Connection, period: str, owner: str) -> int:
        row = conn.execute(
            sa.select(compliance_obligations.c.verified_t, compliance_obligations.c.cap).where(
                compliance_obligations.c.period == period,
                compliance_obligations.c.owner == owner,
            )
        ).first()
        # The verified figure, not an obligation lowered by a shortfall cap.
        found = None if row is None else row.verified_t
        if row is not None and row.cap is not None:
            found = json.loads(row.cap)["verified_t"]
        if found is None:
            raise allocation.AllocationInputError(
                f"{owner}.verified_t: no locked report for {period}: lock it or give verified_t",
                f"{owner}.verified_t：{period} 尚无锁定的排放报告",
            )
        return int(found)

    @staticmethod
    def _pre_allocated(conn: sa.Connection, plan_id: str, owner: str) -> int:
        # The pre-allocation itself, not what was issued: a debt deducted from it was paid
        # with it, and must not come back in the true-up.
        return int(
            conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(allocation_lines.c.allocation_t), 0))
                .select_from(_JOINED)
                .where(
                    allocation_runs.c.plan == plan_id,
                    allocation_runs.c.phase == "pre",
                    allocation_runs.c.state == "issued",
                    allocation_lines.c.owner == owner,
                )
            ).scalar_one()
        )

    @staticmethod
    def _debts(
        conn: sa.Connection, unit_type: str, owners: list[str], *, signed: bool = False
    ) -> dict[str, int]:
        """Per owner, the unreturned excess of issued true-ups in `unit_type`, less what runs
        not rejected deduct from it. Set-wise: three reads at most, one when nobody owes.
        With `signed`, over-deductions show as negative figures instead of being dropped."""
        plans = sorted(p.id for p in allocation.load_plans().values() if p.unit_type == unit_type)
        excess = conn.execute(
            sa.select(
                allocation_lines.c.owner, allocation_lines.c.run_id, allocation_lines.c.excess_t
            )
            .select_from(_JOINED)
            .where(
                allocation_runs.c.plan.in_(plans),
                allocation_runs.c.phase == "final",
                allocation_runs.c.state == "issued",
                allocation_lines.c.excess_t > 0,
                allocation_lines.c.owner.in_(owners),
            )
        ).all()
        if not excess:
            return {}
        keys = {_clawback_key(int(r.run_id), str(r.owner)): r for r in excess}
        returned = dict(
            conn.execute(
                sa.select(registry_ops.c.key, registry_ops.c.quantity).where(
                    registry_ops.c.actor == REGISTRY_OWNER,
                    registry_ops.c.kind == "clawback",
                    registry_ops.c.state == DONE,
                    registry_ops.c.key.in_(sorted(keys)),
                )
            ).all()
        )
        owed: dict[str, int] = {}
        for key, r in keys.items():
            owed[r.owner] = owed.get(r.owner, 0) + int(r.excess_t) - int(returned.get(key, 0))
        for owner, parts in conn.execute(
            sa.select(allocation_lines.c.owner, allocation_lines.c.parts)
            .select_from(_JOINED)
            .where(
                allocation_runs.c.plan.in_(plans),
                allocation_runs.c.state != "rejected",
                allocation_lines.c.owner.in_(sorted(owed)),
            )
        ):
            owed[owner] -= int(json.loads(parts).get("debt_deducted_t", "0"))
        return {o: t for o, t in owed.items() if t > 0 or (signed and t < 0)}

    def _check_debts(self, conn: sa.Connection, run: Run, unit_type: str) -> None:
        """Two runs computed at the same moment could both deduct one debt: the second to be
        issued is refused, naming the entity, and is recomputed."""
        owners = [line.owner for line in run.lines if line.debt_deducted_t > 0]
        if not owners:
            return
        over = sorted(
            o for o, t in self._debts(conn, unit_type, owners, signed=True).items() if t < 0
        )
        if over:
            raise AllocationStateError(
                f"{over[0]}: its debt was deducted by another run meanwhile: reject and recompute",
                f"{over[0]}：其欠缴配额已由另一分配扣减，请驳回后重新计算",
            )

    @staticmethod
    def _busy(conn: sa.Connection, plan_id: str, phase: str, owners: list[str]) -> list[str]:
        rows = conn.execute(
            sa.select(allocation_lines.c.owner)
            .select_from(_JOINED)
            .where(
                allocation_runs.c.plan == plan_id,
                allocation_runs.c.phase == phase,
                allocation_runs.c.state != "rejected",
                allocation_lines.c.owner.in_(owners),
            )
        )
        return sorted(rows.scalars())

    def _decide(
        self, conn: sa.Connection, run_id: int, state: str, by: str, reason: str | None
    ) -> None:
        conn.execute(
            allocation_runs.update()
            .where(allocation_runs.c.id == run_id)
            .values(state=state, decided_by=by, decided_at=now_us(), reason=reason)
        )
        auditlog.append(conn, by, f"allocation.{state}", f"allocation:{run_id}", {})

    @staticmethod
    def _require(run: Run, state: str, action: str) -> None:
        if run.state != state:
            raise AllocationStateError(
                f"cannot {action} allocation run {run.id}: it is {run.state}",
                f"分配 {run.id} 当前为 {run.state}，不能执行此操作",
            )

    @staticmethod
    def _get(conn: sa.Connection, run_id: int, *, lock: bool = False) -> Run:
        query = sa.select(allocation_runs).where(allocation_runs.c.id == run_id)
        if lock:
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            raise NotFoundError(f"no allocation run {run_id}", f"没有编号为 {run_id} 的分配")
        lines = conn.execute(
            sa.select(allocation_lines)
            .where(allocation_lines.c.run_id == run_id)
            .order_by(allocation_lines.c.owner)
        ).all()
        clawed: dict[str, tuple[int, int]] = {}
        final_issued = row.phase == "final" and row.state == "issued"
        if final_issued and any(r.excess_t > 0 for r in lines):
            clawed = {
                str(key): (int(op_id), int(quantity))
                for key, op_id, quantity in conn.execute(
                    sa.select(registry_ops.c.key, registry_ops.c.id, registry_ops.c.quantity).where(
                        registry_ops.c.actor == REGISTRY_OWNER,
                        registry_ops.c.kind == "clawback",
                        registry_ops.c.key.in_(
                            [_clawback_key(run_id, r.owner) for r in lines if r.excess_t > 0]
                        ),
                    )
                )
            }
        out = []
        for r in lines:
            parts = json.loads(r.parts)
            back: int | None = None
            op: int | None = None
            if final_issued:
                op, back = clawed.get(_clawback_key(run_id, r.owner), (None, 0))
            out.append(
                Line(
                    r.owner,
                    json.loads(r.inputs),
                    parts,
                    r.allocation_t,
                    r.already_t,
                    r.issue_t,
                    r.excess_t,
                    r.issue_op,
                    int(parts.get("debt_deducted_t", "0")),
                    back,
                    None if back is None else r.excess_t - back,
                    op,
                )
            )
        return Run(
            row.id,
            row.plan,
            row.phase,
            row.state,
            row.created_by,
            row.decided_by,
            row.reason,
            tuple(out),
        )


def _clawback_key(run_id: int, owner: str) -> str:
    """The claw-back operation's idempotency key: one per run and entity."""
    return f"clawback:{run_id}:{owner}"
