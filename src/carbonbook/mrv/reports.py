"""The report workflow: draft → submitted → verified (by a third-party verifier) → locked.

An enterprise (控排企业) files one report per facility and year. It edits a draft, submits it;
a verifier (核查机构) either returns it with requested corrections or verifies it; the
regulator (主管部门) locks a verified report, and from then on the report is immutable and
is the compliance figure: locking hands the entity's locked ETS-boundary total for the year
to `on_lock`, in the same transaction, which records the obligation in the registry.

Every stored document is validated and computed first (a report that does not compute is
refused and nothing is stored); every transition is a history row and an audit-log entry,
each naming the document's hash, so what was verified is provably what was locked.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from carbonbook import auditlog
from carbonbook.db.ids import allocate_ids
from carbonbook.db.schema import mrv_report_events, mrv_reports
from carbonbook.errors import DomainError, NotFoundError, PermissionDeniedError
from carbonbook.ledger.service import now_us
from carbonbook.mrv.errors import InvalidReportError, Problem
from carbonbook.mrv.model import compute

ENTITY_PREFIX = "entity:"
MAX_COMMENT = 2000
YOY_JUMP = Decimal("0.3")  # a year-on-year change above 30 % is worth the verifier's question


class State(StrEnum):
    DRAFT = "draft"  # 草稿
    SUBMITTED = "submitted"  # 已提交，待核查
    RETURNED = "returned"  # 退回修改
    VERIFIED = "verified"  # 已核查
    LOCKED = "locked"  # 已锁定（履约依据）


EDITABLE = frozenset({State.DRAFT, State.RETURNED})


class ReportStateError(DomainError):
    """An action the report's state does not allow (editing a locked report, say)."""

    code = "REPORT_STATE"
    http_status = 409


class ReportExistsError(DomainError):
    code = "REPORT_EXISTS"
    http_status = 409


class StaleReportError(DomainError):
    """An edit based on an older version: someone changed the report in between."""

    code = "STALE_REPORT"
    http_status = 409


@dataclass(frozen=True, slots=True)
class Event:
    seq: int
    at: int
    actor: str
    action: str
    state: str
    version: int
    doc_hash: str
    comment: str | None


@dataclass(frozen=True, slots=True)
class Report:
    id: int
    owner: str
    scheme: str
    facility: str
    year: int
    methodology: str
    state: State
    version: int
    document: dict[str, Any]
    doc_hash: str
    result: dict[str, Any]
    direct_tco2: Decimal  # the ETS boundary (direct emissions), 0.01 t
    total_tco2: Decimal  # the GB/T boundary, 0.01 t
    created_by: str
    created_at: int
    updated_at: int
    verified_by: str | None
    locked_by: str | None
    locked_at: int | None

    def to_document(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "owner": self.owner,
            "scheme": self.scheme,
            "facility": self.facility,
            "year": self.year,
            "methodology": self.methodology,
            "state": self.state.value,
            "version": self.version,
            "doc_hash": self.doc_hash,
            "direct_tco2": str(self.direct_tco2),
            "total_tco2": str(self.total_tco2),
            "verified_by": self.verified_by,
            "locked_by": self.locked_by,
            "locked_at": self.locked_at,
            "document": self.document,
            "result": self.result,
        }


@dataclass(frozen=True, slots=True)
class LockedFigure:
    """What locking hands to compliance: the entity's locked emissions for the year within
    both boundaries, summed over its locked facility reports in the scheme."""

    owner: str
    scheme: str
    year: int
    direct_tco2: Decimal
    total_tco2: Decimal
    report_ids: tuple[int, ...]
    by: str
    sector: str | None = None  # the locked report's sector (steel, power, ...): its coverage


OnLock = Callable[[sa.Connection, LockedFigure], None]
OnLockMany = Callable[[sa.Connection, list[LockedFigure]], None]


def canonical(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def document_hash(document: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(document).encode()).hexdigest()


def _computed(owner: str, document: dict[str, Any]) -> dict[str, Any]:
    """Validate and compute; the report must be about the filer's own entity."""
    result = compute(document).to_document()
    if owner.startswith(ENTITY_PREFIX):
        mine = owner.removeprefix(ENTITY_PREFIX)
        if result["entity"]["id"] != mine:
            raise InvalidReportError(
                [
                    Problem(
                        "entity.id",
                        f"{result['entity']['id']!r} is not your entity ({mine!r})",
                        f"{result['entity']['id']!r} 不是贵单位（{mine!r}）",
                    )
                ]
            )
    return result


class Reports:
    """Facility-year reports and their workflow over one database."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        on_lock: OnLock | None = None,
        on_lock_many: OnLockMany | None = None,
    ) -> None:
        self.engine = engine
        self.on_lock = on_lock
        self.on_lock_many = on_lock_many

    # -- the enterprise ---------------------------------------------------------------------------

    def create(
        self, owner: str, document: dict[str, Any], *, by: str, scheme: str = "national"
    ) -> Report:
        """File a new draft. Refused when the document does not compute or when the
        facility already has a report for the year."""
        result = _computed(owner, document)
        at = now_us()
        doc_hash = document_hash(document)
        with self.engine.begin() as conn:
            exists = conn.execute(
                sa.select(mrv_reports.c.id, mrv_reports.c.state).where(
                    mrv_reports.c.owner == owner,
                    mrv_reports.c.facility == result["facility"],
                    mrv_reports.c.year == result["year"],
                )
            ).first()
            if exists is not None:
                raise ReportExistsError(
                    f"{result['facility']} already has report {exists.id} for {result['year']} "
                    f"({exists.state}): edit that one",
                    f"{result['facility']} 的 {result['year']} 年度报告已存在"
                    f"（编号 {exists.id}，{exists.state}），请修改该报告",
                )
            _year_on_year(conn, owner, result)
            report_id = allocate_ids(conn)
            conn.execute(
                mrv_reports.insert().values(
                    id=report_id,
                    owner=owner,
                    scheme=scheme,
                    facility=result["facility"],
                    year=result["year"],
                    methodology=result["methodology"],
                    state=State.DRAFT.value,
                    version=1,
                    document=canonical(document),
                    doc_hash=doc_hash,
                    result=canonical(result),
                    direct_tco2=result["direct_tco2"],
                    total_tco2=result["total_tco2"],
                    created_by=by,
                    created_at=at,
                    updated_at=at,
                )
            )
            self._event(conn, report_id, by, "create", State.DRAFT, 1, doc_hash, None, at)
            return self._get(conn, report_id)

    def update(
        self, report_id: int, owner: str, document: dict[str, Any], *, version: int, by: str
    ) -> Report:
        """Replace a draft's (or a returned report's) document. `version` is the one the
        editor started from: an edit over someone else's newer edit is refused."""
        result = _computed(owner, document)
        with self.engine.begin() as conn:
            report = self._mine(conn, report_id, owner, lock=True)
            self._require(report, EDITABLE, "edit")
            if version != report.version:
                raise StaleReportError(
                    f"report {report_id} is at version {report.version}, not {version}: "
                    "reload it and edit again",
                    f"报告 {report_id} 已更新为第 {report.version} 版（不是第 {version} 版），"
                    "请刷新后再修改",
                )
            if (result["facility"], result["year"]) != (report.facility, report.year):
                raise InvalidReportError(
                    [
                        Problem(
                            "facility",
                            "a report's facility and year cannot change: file a new report",
                            "报告的设施与年度不可更改，请新建报告",
                        )
                    ]
                )
            _year_on_year(conn, owner, result)
            at = now_us()
            doc_hash = document_hash(document)
            conn.execute(
                mrv_reports.update()
                .where(mrv_reports.c.id == report_id)
                .values(
                    version=report.version + 1,
                    methodology=result["methodology"],
                    document=canonical(document),
                    doc_hash=doc_hash,
                    result=canonical(result),
                    direct_tco2=result["direct_tco2"],
                    total_tco2=result["total_tco2"],
                    updated_at=at,
                )
            )
            self._event(
                conn, report_id, by, "edit", report.state, report.version + 1, doc_hash, None, at
            )
            return self._get(conn, report_id)

    def submit(self, report_id: int, owner: str, *, by: str) -> Report:
        with self.engine.begin() as conn:
            report = self._mine(conn, report_id, owner, lock=True)
            self._require(report, EDITABLE, "submit")
            return self._move(conn, report, State.SUBMITTED, "submit", by, None)

    # -- the verifier -----------------------------------------------------------------------------

    def return_for_correction(self, report_id: int, *, verifier: str, comment: str) -> Report:
        """Send a submitted report back with the corrections the verifier requests."""
        comment = _comment(comment, required=True)
        with self.engine.begin() as conn:
            report = self._locked_row(conn, report_id)
            self._independent(report, verifier)
            self._require(report, {State.SUBMITTED}, "return")
            return self._move(conn, report, State.RETURNED, "return", verifier, comment)

    def verify(self, report_id: int, *, verifier: str, opinion: str = "") -> Report:
        """Verify a submitted report: the figure as submitted is the verified one."""
        opinion = _comment(opinion, required=False)
        with self.engine.begin() as conn:
            report = self._locked_row(conn, report_id)
            self._independent(report, verifier)
            self._require(report, {State.SUBMITTED}, "verify")
            conn.execute(
                mrv_reports.update()
                .where(mrv_reports.c.id == report_id)
                .values(verified_by=verifier)
            )
            report = replace(report, verified_by=verifier)
            return self._move(conn, report, State.VERIFIED, "verify", verifier, opinion or None)

    def comment(self, report_id: int, *, by: str, comment: str) -> Report:
        """A remark on the record, from the owner or a verifier, in any state but locked."""
        text = _comment(comment, required=True)
        with self.engine.begin() as conn:
            report = self._locked_row(conn, report_id)
            self._require(report, set(State) - {State.LOCKED}, "comment on")
            self._event(
                conn,
                report.id,
                by,
                "comment",
                report.state,
                report.version,
                report.doc_hash,
                text,
                now_us(),
            )
            return report

    # -- the regulator ----------------------------------------------------------------------------

    def lock(self, report_id: int, *, by: str) -> Report:
        """Lock a verified report; it becomes the compliance figure (in the same transaction
        the entity's obligation for the year is recorded through `on_lock`)."""
        with self.engine.begin() as conn:
            report = self._locked_row(conn, report_id)
            self._require(report, {State.VERIFIED}, "lock")
            at = now_us()
            conn.execute(
                mrv_reports.update()
                .where(mrv_reports.c.id == report_id)
                .values(locked_by=by, locked_at=at)
            )
            report = replace(report, locked_by=by, locked_at=at)
            locked = self._move(conn, report, State.LOCKED, "lock", by, None)
            if self.on_lock is not None:
                self.on_lock(conn, self._figure(conn, report, by))
            return locked

    def lock_many(self, report_ids: list[int], *, by: str, chunk: int = 500) -> int:
        """Lock many verified reports, `chunk` to a transaction: one read, one update, one
        insert of history rows and one audit entry (naming every report and its document's
        hash) per chunk; each entity's figure goes to `on_lock` once per chunk. A report that
        is not verified refuses its whole chunk (earlier chunks stay locked); reports already
        locked are skipped, so a rerun after a failure finishes the job."""
        locked = 0
        for start in range(0, len(report_ids), max(1, chunk)):
            with self.engine.begin() as conn:
                locked += self._lock_chunk(conn, report_ids[start : start + chunk], by)
        return locked

    def _lock_chunk(self, conn: sa.Connection, ids: list[int], by: str) -> int:
        rows = conn.execute(
            sa.select(mrv_reports)
            .where(mrv_reports.c.id.in_(ids))
            .order_by(mrv_reports.c.id)
            .with_for_update()
        )
        found = {row.id: _report(row) for row in rows}
        missing = [i for i in ids if i not in found]
        if missing:
            raise NotFoundError(f"no report {missing[0]}", f"没有编号为 {missing[0]} 的报告")
        todo = [found[i] for i in sorted(set(ids)) if found[i].state is not State.LOCKED]
        for report in todo:
            self._require(report, {State.VERIFIED}, "lock")
        if not todo:
            return 0
        at = now_us()
        conn.execute(
            mrv_reports.update()
            .where(mrv_reports.c.id.in_([r.id for r in todo]))
            .values(state=State.LOCKED.value, locked_by=by, locked_at=at, updated_at=at)
        )
        last = dict(
            conn.execute(
                sa.select(mrv_report_events.c.report_id, sa.func.max(mrv_report_events.c.seq))
                .where(mrv_report_events.c.report_id.in_([r.id for r in todo]))
                .group_by(mrv_report_events.c.report_id)
            ).all()
        )
        conn.execute(
            mrv_report_events.insert(),
            [
                {
                    "report_id": r.id,
                    "seq": last.get(r.id, 0) + 1,
                    "at": at,
                    "actor": by,
                    "action": "lock",
                    "state": State.LOCKED.value,
                    "version": r.version,
                    "doc_hash": r.doc_hash,
                    "comment": None,
                }
                for r in todo
            ],
        )
        auditlog.append(
            conn,
            by,
            "mrv.report.lock",
            f"reports:{todo[0].id}..{todo[-1].id}",
            {"reports": {str(r.id): r.doc_hash for r in todo}},
        )
        if self.on_lock_many is not None:
            self.on_lock_many(conn, self._figures(conn, todo, by))
        elif self.on_lock is not None:
            entities = {(r.owner, r.scheme, r.year): r for r in todo}
            for report in entities.values():
                self.on_lock(conn, self._figure(conn, report, by))
        return len(todo)

    @staticmethod
    def _figures(conn: sa.Connection, reports: list[Report], by: str) -> list[LockedFigure]:
        """Every touched entity's locked figure, in one read."""
        wanted = {(r.owner, r.scheme, r.year) for r in reports}
        rows = conn.execute(
            sa.select(
                mrv_reports.c.owner,
                mrv_reports.c.scheme,
                mrv_reports.c.year,
                mrv_reports.c.id,
                mrv_reports.c.direct_tco2,
                mrv_reports.c.total_tco2,
            )
            .where(
                mrv_reports.c.owner.in_(sorted({r.owner for r in reports})),
                mrv_reports.c.state == State.LOCKED.value,
            )
            .order_by(mrv_reports.c.id)
        )
        sums: dict[tuple[str, str, int], tuple[Decimal, Decimal, list[int]]] = {}
        for row in rows:
            key = (row.owner, row.scheme, row.year)
            if key not in wanted:
                continue
            direct, total, ids = sums.get(key, (Decimal(0), Decimal(0), []))
            sums[key] = (
                direct + Decimal(row.direct_tco2),
                total + Decimal(row.total_tco2),
                [*ids, row.id],
            )
        # Each figure carries its report's sector, as one by one (`_figure`): compliance sets
        # no obligation for a sector the scheme does not cover that year.
        sectors = {
            (r.owner, r.scheme, r.year): sector
            for r in reports
            if isinstance(sector := r.document.get("sector"), str)
        }
        return [
            LockedFigure(
                owner,
                scheme,
                year,
                direct,
                total,
                tuple(ids),
                by,
                sectors.get((owner, scheme, year)),
            )
            for (owner, scheme, year), (direct, total, ids) in sorted(sums.items())
        ]

    # -- reading ----------------------------------------------------------------------------------

    def get(self, report_id: int) -> Report:
        with self.engine.connect() as conn:
            return self._get(conn, report_id)

    def find(
        self,
        *,
        owner: str | None = None,
        states: set[State] | None = None,
        year: int | None = None,
        limit: int = 200,
    ) -> list[Report]:
        query = sa.select(mrv_reports).order_by(mrv_reports.c.id.desc()).limit(limit)
        if owner is not None:
            query = query.where(mrv_reports.c.owner == owner)
        if states:
            query = query.where(mrv_reports.c.state.in_([s.value for s in states]))
        if year is not None:
            query = query.where(mrv_reports.c.year == year)
        with self.engine.connect() as conn:
            return [_report(row) for row in conn.execute(query)]

    def history(self, report_id: int) -> list[Event]:
        with self.engine.connect() as conn:
            self._get(conn, report_id)
            rows = conn.execute(
                sa.select(mrv_report_events)
                .where(mrv_report_events.c.report_id == report_id)
                .order_by(mrv_report_events.c.seq)
            )
            return [
                Event(r.seq, r.at, r.actor, r.action, r.state, r.version, r.doc_hash, r.comment)
                for r in rows
            ]

    # -- internals --------------------------------------------------------------------------------

    def _get(self, conn: sa.Connection, report_id: int, *, lock: bool = False) -> Report:
        query = sa.select(mrv_reports).where(mrv_reports.c.id == report_id)
        if lock:
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            raise NotFoundError(f"no report {report_id}", f"没有编号为 {report_id} 的报告")
        return _report(row)

    def _locked_row(self, conn: sa.Connection, report_id: int) -> Report:
        return self._get(conn, report_id, lock=True)

    def _mine(self, conn: sa.Connection, report_id: int, owner: str, *, lock: bool) -> Report:
        report = self._get(conn, report_id, lock=lock)
        if report.owner != owner:
            # Someone else's report: answer as if it did not exist (no probing of ids).
            raise NotFoundError(f"no report {report_id}", f"没有编号为 {report_id} 的报告")
        return report

    @staticmethod
    def _independent(report: Report, verifier: str) -> None:
        if verifier == report.owner:
            raise PermissionDeniedError(
                "a verifier cannot verify its own report", "核查机构不能核查自己的报告"
            )

    @staticmethod
    def _require(report: Report, allowed: set[State] | frozenset[State], action: str) -> None:
        if report.state not in allowed:
            raise ReportStateError(
                f"cannot {action} report {report.id}: it is {report.state.value}",
                f"报告 {report.id} 当前状态为 {_STATE_ZH[report.state]}，不能执行此操作",
                state=report.state.value,
            )

    def _move(
        self,
        conn: sa.Connection,
        report: Report,
        to: State,
        action: str,
        by: str,
        comment: str | None,
    ) -> Report:
        at = now_us()
        conn.execute(
            mrv_reports.update()
            .where(mrv_reports.c.id == report.id)
            .values(state=to.value, updated_at=at)
        )
        self._event(conn, report.id, by, action, to, report.version, report.doc_hash, comment, at)
        return replace(report, state=to, updated_at=at)

    @staticmethod
    def _event(
        conn: sa.Connection,
        report_id: int,
        by: str,
        action: str,
        state: State,
        version: int,
        doc_hash: str,
        comment: str | None,
        at: int,
    ) -> None:
        last = conn.execute(
            sa.select(sa.func.max(mrv_report_events.c.seq)).where(
                mrv_report_events.c.report_id == report_id
            )
        ).scalar()
        conn.execute(
            mrv_report_events.insert().values(
                report_id=report_id,
                seq=(last or 0) + 1,
                at=at,
                actor=by,
                action=action,
                state=state.value,
                version=version,
                doc_hash=doc_hash,
                comment=comment,
            )
        )
        # The security audit log names the report and the document's hash, never its content.
        auditlog.append(
            conn,
            by,
            f"mrv.report.{action}",
            f"report:{report_id}",
            {"state": state.value, "version": version, "doc_hash": doc_hash},
        )

    @staticmethod
    def _figure(conn: sa.Connection, report: Report, by: str) -> LockedFigure:
        rows = conn.execute(
            sa.select(mrv_reports.c.id, mrv_reports.c.direct_tco2, mrv_reports.c.total_tco2)
            .where(
                mrv_reports.c.owner == report.owner,
                mrv_reports.c.scheme == report.scheme,
                mrv_reports.c.year == report.year,
                mrv_reports.c.state == State.LOCKED.value,
            )
            .order_by(mrv_reports.c.id)
        ).all()
        return LockedFigure(
            report.owner,
            report.scheme,
            report.year,
            sum((Decimal(r.direct_tco2) for r in rows), Decimal(0)),
            sum((Decimal(r.total_tco2) for r in rows), Decimal(0)),
            tuple(r.id for r in rows),
            by,
            sector if isinstance(sector := report.document.get("sector"), str) else None,
        )


def _year_on_year(conn: sa.Connection, owner: str, result: dict[str, Any]) -> None:
    """A data-quality check: direct emissions that moved by more than YOY_JUMP against the
    facility's previous year are flagged in the stored result's warnings (the verifier sees
    them), not refused: a new kiln or a shutdown is real."""
    before = conn.execute(
        sa.select(mrv_reports.c.direct_tco2).where(
            mrv_reports.c.owner == owner,
            mrv_reports.c.facility == result["facility"],
            mrv_reports.c.year == result["year"] - 1,
        )
    ).scalar()
    if before is None or Decimal(before) == 0:
        return
    now = Decimal(result["direct_tco2"])
    change = (now - Decimal(before)) / abs(Decimal(before))
    if abs(change) > YOY_JUMP:
        result["warnings"].append(
            f"direct_tco2: {now} t is {change * 100:+.0f} % against {result['year'] - 1} "
            f"({before} t): explain the change"
        )


_STATE_ZH = {
    State.DRAFT: "草稿",
    State.SUBMITTED: "已提交",
    State.RETURNED: "退回修改",
    State.VERIFIED: "已核查",
    State.LOCKED: "已锁定",
}


def _comment(text: str, *, required: bool) -> str:
    text = text.strip()
    if required and not text:
        raise InvalidReportError(
            [Problem("comment", "say what should be corrected", "请说明需要更正的内容")]
        )
    if len(text) > MAX_COMMENT:
        raise InvalidReportError(
            [
                Problem(
                    "comment",
                    f"at most {MAX_COMMENT} characters, not {len(text)}",
                    f"最多 {MAX_COMMENT} 字，而不是 {len(text)} 字",
                )
            ]
        )
    return text


def _report(row: sa.Row[Any]) -> Report:
    return Report(
        id=row.id,
        owner=row.owner,
        scheme=row.scheme,
        facility=row.facility,
        year=row.year,
        methodology=row.methodology,
        state=State(row.state),
        version=row.version,
        document=json.loads(row.document),
        doc_hash=row.doc_hash,
        result=json.loads(row.result),
        direct_tco2=Decimal(row.direct_tco2),
        total_tco2=Decimal(row.total_tco2),
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
        verified_by=row.verified_by,
        locked_by=row.locked_by,
        locked_at=row.locked_at,
    )
