"""The bridge from grams to tonnes (碳普惠减排量): verified personal reductions aggregated
into whole tonnes of PCER issued to an aggregator, with a Merkle root over the events.

A run takes every credited personal event of the vintage year, quantified under one of the
PCER type's methodologies, that no earlier run took; adds the milligrams the previous run
carried over; issues the whole tonnes through the registry; carries the rest. Each event's
identity (platform, event_id) is the key of its `pcer_leaves` row, so no milligram is ever
counted twice, even by two runs racing. The run publishes its Merkle root (RFC 6962); a person
gets an inclusion proof for each of their events and can check it without trusting us.

The gate of a run: only a registered aggregator entity receives tonnes, only a vintage the
scheme covers (from its first vintage in data/registry/registry.toml to the current year) is
issued, and each aggregator's remainder is its own (carried only into its own next run, whose
grams come from its own earlier trees). The grams behind each issued tonne leave the people's
accounts in the issuance's own ledger batch, into the registry's retired account (注销), so one
reduction is never counted twice on the ledger; each person's statement shows the move with
the run id.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from carbonbook import auditlog
from carbonbook.db.schema import pcer_leaves, pcer_runs, people, personal_events, users
from carbonbook.ledger import TransferRequest
from carbonbook.ledger.service import now_us
from carbonbook.registry import errors, merkle

if TYPE_CHECKING:
    from carbonbook.registry.service import Registry

MG_PER_TONNE = 1_000_000_000
CREDITED = 0  # personal_events.status of an event credited to its person
RETIRED_OWNER, RETIRED_NAME = "registry", "pcer-retired"  # where issued grams go (注销)
AGGREGATOR_PREFIX = "entity:"
SHANGHAI = ZoneInfo("Asia/Shanghai")


class UnknownAggregatorError(errors.RegistryError):
    """Tonnes go only to a registered entity, never to a person or a made-up name."""

    code = "UNKNOWN_AGGREGATOR"
    http_status = 422


class VintageNotCoveredError(errors.RegistryError):
    """A vintage before the scheme existed, or one that has not begun."""

    code = "VINTAGE_NOT_COVERED"
    http_status = 422


class GramsNotHeldError(errors.RegistryError):
    """A person's account no longer holds the grams their events in the run were credited."""

    code = "GRAMS_NOT_HELD"
    http_status = 409


@dataclass(frozen=True, slots=True)
class Run:
    id: int
    unit_type: str
    vintage: int
    aggregator: str
    events: int
    events_mg: int
    carried_in_mg: int
    tonnes: int
    remainder_mg: int
    merkle_root: str
    issue_op: int | None

    def to_document(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "unit_type": self.unit_type,
            "vintage": self.vintage,
            "aggregator": self.aggregator,
            "events": self.events,
            "events_mg": self.events_mg,
            "carried_in_mg": self.carried_in_mg,
            "tonnes": self.tonnes,
            "remainder_mg": self.remainder_mg,
            "merkle_root": self.merkle_root,
            "issue_op": self.issue_op,
        }


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """What a person needs to check that one event of theirs is inside a run's root."""

    run_id: int
    merkle_root: str
    tree_size: int
    leaf_index: int
    leaf: str  # the canonical JSON whose SHA-256(0x00 || leaf) is the leaf hash
    path: tuple[str, ...]  # hex sibling hashes, nearest first

    def verify(self) -> bool:
        return merkle.verify(
            merkle.leaf_hash(self.leaf.encode()),
            self.leaf_index,
            self.tree_size,
            [bytes.fromhex(p) for p in self.path],
            bytes.fromhex(self.merkle_root),
        )

    def to_document(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "merkle_root": self.merkle_root,
            "tree_size": self.tree_size,
            "leaf_index": self.leaf_index,
            "leaf": self.leaf,
            "path": list(self.path),
            "algorithm": "RFC 6962: leaf SHA-256(0x00||leaf), node SHA-256(0x01||left||right)",
        }


def canonical_leaf(row: Any) -> str:
    """The record a leaf commits to: the event's identity, owner, grams and methodology."""
    return json.dumps(
        {
            "platform": row.platform,
            "event_id": row.event_id,
            "person": row.person,
            "behaviour": row.behaviour,
            "day": row.local_day,
            "methodology": row.methodology,
            "reduction_mg": int(row.reduction_mg),
        },
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
    )


class Bridge:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.engine = registry.engine
        self.rules = registry.rules

    def run(self, *, unit_type: str, vintage: int, aggregator: str, by: str) -> Run:
        """Aggregate what is new into whole tonnes; all of it commits or none does."""
        unit = self.rules.unit_type(unit_type)
        if not unit.methodologies:
            raise errors.NotEligibleError(
                f"{unit_type} aggregates no personal methodology",
                f"{unit_type} 不汇总个人减排方法学",
            )
        _check_vintage(unit_type, unit.first_vintage, vintage)
        asset = self.rules.asset(unit_type, vintage)
        with self.engine.begin() as conn:
            _check_aggregator(conn, aggregator)
            rows = self._fresh_events(conn, unit.methodologies, vintage)
            carried = self._carried(conn, unit_type, vintage, aggregator)
            events_mg = sum(int(r.reduction_mg) for r in rows)
            tonnes, remainder = divmod(carried + events_mg, MG_PER_TONNE)
            leaves = [canonical_leaf(r) for r in rows]
            top = merkle.root([merkle.leaf_hash(leaf.encode()) for leaf in leaves]).hex()
            run_id = int(
                conn.execute(
                    pcer_runs.insert()
                    .values(
                        unit_type=unit_type,
                        vintage=vintage,
                        aggregator=aggregator,
                        events=len(rows),
                        events_mg=events_mg,
                        carried_in_mg=carried,
                        tonnes=tonnes,
                        remainder_mg=remainder,
                        merkle_root=top,
                        created_by=by,
                        created_at=now_us(),
                    )
                    .returning(pcer_runs.c.id)
                ).scalar_one()
            )
            if rows:
                # The key of each row is the event's identity: a second run taking the same
                # event fails here and rolls back whole.
                conn.execute(
                    pcer_leaves.insert(),
                    [
                        {
                            "platform": r.platform,
                            "event_id": r.event_id,
                            "run_id": run_id,
                            "leaf_index": i,
                            "person": r.person,
                            "reduction_mg": int(r.reduction_mg),
                            "leaf": leaf,
                        }
                        for i, (r, leaf) in enumerate(zip(rows, leaves, strict=True))
                    ],
                )
            op_id = None
            if tonnes:
                retire = self._retirements(
                    conn, run_id, asset, aggregator, rows, carried, tonnes * MG_PER_TONNE
                )
                op_id = self.registry.issue_in(
                    conn,
                    asset=asset,
                    to_owner=aggregator,
                    quantity=tonnes,
                    key=f"pcer-run:{run_id}",
                    by=by,
                    note=f"pcer run {run_id}, merkle root {top}",
                    also=retire,
                )
                conn.execute(
                    pcer_runs.update().where(pcer_runs.c.id == run_id).values(issue_op=op_id)
                )
            auditlog.append(
                conn,
                by,
                "registry.pcer_run",
                f"{unit_type}-{vintage}",
                {"run": run_id, "events": len(rows), "tonnes": tonnes, "root": top},
            )
            return self._run(conn, run_id)

    def runs(self, unit_type: str | None = None) -> list[Run]:
        query = sa.select(pcer_runs).order_by(pcer_runs.c.id.desc())
        if unit_type is not None:
            query = query.where(pcer_runs.c.unit_type == unit_type)
        with self.engine.connect() as conn:
            return [_run(r) for r in conn.execute(query)]

    def proofs_of(self, person: str) -> list[InclusionProof]:
        """An inclusion proof for each of `person`'s events in any run."""
        out: list[InclusionProof] = []
        with self.engine.connect() as conn:
            mine = conn.execute(
                sa.select(pcer_leaves.c.run_id, pcer_leaves.c.leaf_index, pcer_leaves.c.leaf)
                .where(pcer_leaves.c.person == person)
                .order_by(pcer_leaves.c.run_id, pcer_leaves.c.leaf_index)
            ).all()
            trees: dict[int, tuple[list[bytes], str]] = {}
            for run_id, index, leaf in mine:
                if run_id not in trees:
                    leaves = conn.execute(
                        sa.select(pcer_leaves.c.leaf)
                        .where(pcer_leaves.c.run_id == run_id)
                        .order_by(pcer_leaves.c.leaf_index)
                    ).scalars()
                    hashes = [merkle.leaf_hash(text.encode()) for text in leaves]
                    trees[run_id] = (hashes, self._run(conn, run_id).merkle_root)
                hashes, top = trees[run_id]
                path = merkle.proof(hashes, index)
                out.append(
                    InclusionProof(
                        run_id, top, len(hashes), index, leaf, tuple(p.hex() for p in path)
                    )
                )
        return out

    def verify(self) -> list[str]:
        """Recompute every run's root from its stored leaves; name any that differ."""
        problems = []
        for found in self.runs():
            with self.engine.connect() as conn:
                leaves = conn.execute(
                    sa.select(pcer_leaves.c.leaf, pcer_leaves.c.reduction_mg)
                    .where(pcer_leaves.c.run_id == found.id)
                    .order_by(pcer_leaves.c.leaf_index)
                ).all()
            top = merkle.root([merkle.leaf_hash(leaf.encode()) for leaf, _ in leaves]).hex()
            if top != found.merkle_root:
                problems.append(
                    f"pcer run {found.id}: leaves hash to {top}, not the published root"
                )
            if sum(int(mg) for _, mg in leaves) != found.events_mg:
                problems.append(
                    f"pcer run {found.id}: leaves do not add up to {found.events_mg} mg"
                )
        return problems

    def _fresh_events(
        self, conn: sa.Connection, methodologies: tuple[str, ...], vintage: int
    ) -> list[Any]:
        taken = sa.select(pcer_leaves.c.platform).where(
            pcer_leaves.c.platform == personal_events.c.platform,
            pcer_leaves.c.event_id == personal_events.c.event_id,
        )
        return list(
            conn.execute(
                sa.select(
                    personal_events.c.platform,
                    personal_events.c.event_id,
                    personal_events.c.person,
                    personal_events.c.behaviour,
                    personal_events.c.local_day,
                    personal_events.c.methodology,
                    personal_events.c.reduction_mg,
                )
                .where(
                    personal_events.c.methodology.in_(methodologies),
                    personal_events.c.status == CREDITED,
                    personal_events.c.reduction_mg > 0,
                    personal_events.c.local_day.like(f"{vintage}-%"),
                    ~sa.exists(taken),
                )
                .order_by(
                    personal_events.c.occurred_at,
                    personal_events.c.platform,
                    personal_events.c.event_id,
                )
            ).all()
        )

    def _retirements(
        self,
        conn: sa.Connection,
        run_id: int,
        asset: str,
        aggregator: str,
        rows: list[Any],
        carried: int,
        issued_mg: int,
    ) -> list[TransferRequest]:
        """The transfers that move the grams behind `issued_mg` from their people into the
        retired account: first the carried-in grams (the tail of this aggregator's earlier
        trees), then this run's events in leaf order, the last one in part."""
        owed: dict[str, int] = defaultdict(int)
        left = issued_mg
        for person, mg in [
            *self._carried_leaves(conn, run_id, aggregator, carried),
            *((r.person, int(r.reduction_mg)) for r in rows),
        ]:
            take = min(mg, left)
            if take > 0:
                owed[person] += take
                left -= take
        ledger = self.registry.ledger
        retired = ledger.open_account_in(conn, RETIRED_OWNER, "CO2E_MG", RETIRED_NAME)
        owners = dict(
            conn.execute(
                sa.select(people.c.handle, people.c.owner).where(people.c.handle.in_(list(owed)))
            ).all()
        )
        out: list[TransferRequest] = []
        meta = {"run": run_id, "asset": asset, "aggregator": aggregator}
        for person in sorted(owed):
            owner = owners.get(person, f"person:{person}")
            account = ledger.find_account_in(conn, owner, "CO2E_MG")
            held = 0 if account is None else account.available
            if account is None or held < owed[person]:
                raise GramsNotHeldError(
                    f"{person} holds {held} mg, not the {owed[person]} mg run {run_id} retires",
                    f"{person} 持有 {held} 毫克，少于汇总 {run_id} 须注销的 {owed[person]} 毫克",
                )
            out.append(
                TransferRequest.move(
                    account.id,
                    retired.id,
                    "CO2E_MG",
                    owed[person],
                    "pcer_retire",
                    f"pcer-run:{run_id}:retire:{person}",
                    meta=meta,
                )
            )
        return out

    @staticmethod
    def _carried_leaves(
        conn: sa.Connection, run_id: int, aggregator: str, carried: int
    ) -> list[tuple[str, int]]:
        """(person, mg) of the grams carried in: the newest leaves of the aggregator's earlier
        runs of this type and vintage, oldest first, the oldest one in part."""
        if carried <= 0:
            return []
        this = (
            sa.select(pcer_runs.c.unit_type, pcer_runs.c.vintage)
            .where(pcer_runs.c.id == run_id)
            .subquery()
        )
        query = (
            sa.select(pcer_leaves.c.person, pcer_leaves.c.reduction_mg)
            .join(pcer_runs, pcer_runs.c.id == pcer_leaves.c.run_id)
            .where(
                pcer_runs.c.aggregator == aggregator,
                pcer_runs.c.unit_type == this.c.unit_type,
                pcer_runs.c.vintage == this.c.vintage,
                pcer_runs.c.id < run_id,
            )
            .order_by(pcer_leaves.c.run_id.desc(), pcer_leaves.c.leaf_index.desc())
        )
        tail: list[tuple[str, int]] = []
        need = carried
        for person, mg in conn.execute(query):
            part = min(int(mg), need)
            tail.append((person, part))
            need -= part
            if need == 0:
                break
        return tail[::-1]

    def _carried(self, conn: sa.Connection, unit_type: str, vintage: int, aggregator: str) -> int:
        # Each aggregator's remainder is its own: it came from its own trees.
        last = conn.execute(
            sa.select(pcer_runs.c.remainder_mg)
            .where(
                pcer_runs.c.unit_type == unit_type,
                pcer_runs.c.vintage == vintage,
                pcer_runs.c.aggregator == aggregator,
            )
            .order_by(pcer_runs.c.id.desc())
            .limit(1)
            .with_for_update()  # two runs of one type and vintage queue up here
        ).scalar()
        return int(last or 0)

    def _run(self, conn: sa.Connection, run_id: int) -> Run:
        return _run(conn.execute(sa.select(pcer_runs).where(pcer_runs.c.id == run_id)).one())


def _check_vintage(unit_type: str, first: int | None, vintage: int) -> None:
    this_year = datetime.now(SHANGHAI).year
    if first is None or not first <= vintage <= this_year:
        since = "no first vintage in the rules" if first is None else f"from {first}"
        since_zh = "规则中没有起始年份" if first is None else f"自 {first} 年起"
        raise VintageNotCoveredError(
            f"{unit_type} does not cover vintage {vintage} ({since} to {this_year})",
            f"{unit_type} 不覆盖 {vintage} 年度（{since_zh}，至 {this_year} 年）",
        )


def _check_aggregator(conn: sa.Connection, aggregator: str) -> None:
    """Only a registered entity aggregates: an `entity:` owner some active user acts for."""
    known = (
        aggregator.startswith(AGGREGATOR_PREFIX)
        and conn.execute(
            sa.select(sa.literal(1))
            .select_from(users)
            .where(users.c.owner == aggregator, users.c.disabled.is_(False))
            .limit(1)
        ).first()
        is not None
    )
    if not known:
        raise UnknownAggregatorError(
            f"{aggregator!r} is not a registered aggregator entity (entity:...)",
            f"{aggregator!r} 不是已登记的汇总机构（entity:...）",
        )


def _run(row: Any) -> Run:
    return Run(
        int(row.id),
        row.unit_type,
        int(row.vintage),
        row.aggregator,
        int(row.events),
        int(row.events_mg),
        int(row.carried_in_mg),
        int(row.tonnes),
        int(row.remainder_mg),
        row.merkle_root,
        None if row.issue_op is None else int(row.issue_op),
    )
