"""Allocation runs: computed by a regulator, approved by a second one, issued in one
transaction through the registry.

A `pre` run issues the plan's pre-allocation share (70 %) of the allowance computed on the
base year's inputs; a `final` run computes the allowance on the verified inputs and issues
the true-up, the final allowance minus what that entity was pre-allocated under the plan.
For the verified-emissions method the final input is the entity's locked report: its
obligation for the plan's period. A pre-allocation above the final figure is recorded as
excess (to be returned or deducted by the regulator's decision; carbonbook does not claw
units back on its own).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from carbonbook import auditlog
from carbonbook.db.ids import allocate_ids
from carbonbook.db.schema import allocation_lines, allocation_runs, compliance_obligations
from carbonbook.errors import NotFoundError, PermissionDeniedError
from carbonbook.ledger.service import now_us
from carbonbook.registry import allocation
from carbonbook.registry.errors import RegistryError
from carbonbook.registry.service import MAX_TONNES, Registry

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
            lines = [
                self._line(conn, plan, phase, owner, inputs) for owner, inputs in entities.items()
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
        """Issue every line of an approved run in one transaction; a retry does nothing."""
        with self.engine.begin() as conn:
            run = self._get(conn, run_id, lock=True)
            if run.state == "issued":
                return run
            self._require(run, "approved", "issue")
            plan = allocation.plan(run.plan)
            asset = self.registry.rules.asset(plan.unit_type, plan.vintage)
            for line in run.lines:
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
            auditlog.append(
                conn,
                by,
                "allocation.issue",
                f"allocation:{run_id}",
                {"asset": asset, "tonnes": run.total_issue_t},
            )
            return self._get(conn, run_id)

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
            return Line(owner, given, parts, pre, 0, pre, 0, None)
        already = self._pre_allocated(conn, plan.id, owner)
        return Line(
            owner,
            given,
            result.parts,
            result.tonnes,
            already,
            max(0, result.tonnes - already),
            max(0, already - result.tonnes),
            None,
        )

    @staticmethod
    def _verified(conn: sa.Connection, period: str, owner: str) -> int:
        found = conn.execute(
            sa.select(compliance_obligations.c.verified_t).where(
                compliance_obligations.c.period == period,
                compliance_obligations.c.owner == owner,
            )
        ).scalar()
        if found is None:
            raise allocation.AllocationInputError(
                f"{owner}.verified_t: no locked report for {period}: lock it or give verified_t",
                f"{owner}.verified_t：{period} 尚无锁定的排放报告",
            )
        return int(found)

    @staticmethod
    def _pre_allocated(conn: sa.Connection, plan_id: str, owner: str) -> int:
        return int(
            conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(allocation_lines.c.issue_t), 0))
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
        )
        return Run(
            row.id,
            row.plan,
            row.phase,
            row.state,
            row.created_by,
            row.decided_by,
            row.reason,
            tuple(
                Line(
                    r.owner,
                    json.loads(r.inputs),
                    json.loads(r.parts),
                    r.allocation_t,
                    r.already_t,
                    r.issue_t,
                    r.excess_t,
                    r.issue_op,
                )
                for r in lines
            ),
        )
