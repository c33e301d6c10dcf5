"""Monthly activity records (月度存证), the service: filing a month with its lab report files,
immutable versions with reasons (a correction is the next version, the history is kept, every
filing an audit entry), a year's status (filed, late, missing, pending), the stored lab
reports, and the year's draft report built from the months through `Reports`.

The rules (the document, the 40-day clock, the file checks, the aggregation) are pure and live
in `mrv.months`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from carbonbook import auditlog
from carbonbook.db.ids import allocate_ids
from carbonbook.db.schema import mrv_lab_report_files, mrv_lab_reports, mrv_monthly_records
from carbonbook.errors import NotFoundError
from carbonbook.ledger.service import now_us
from carbonbook.mrv.errors import Problem
from carbonbook.mrv.months import (
    CARBON,
    MAX_REASON,
    Attachment,
    InvalidMonthError,
    MonthFiledError,
    MonthRecord,
    StaleMonthError,
    UnknownMonthError,
    YearInput,
    _text,
    aggregate,
    filing_days,
    filing_deadline,
    has_ended,
    inspect_file,
    is_late,
    local_date,
    parse_month,
)
from carbonbook.mrv.reports import ENTITY_PREFIX, canonical, document_hash

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from carbonbook.mrv.reports import Report, Reports


# -- the service ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredLabReport:
    id: int
    report_no: str
    lab: str
    accreditation: str
    sample_date: str
    report_date: str
    file_name: str
    sha256: str
    late: bool

    def to_document(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "report_no": self.report_no,
            "lab": self.lab,
            "accreditation": self.accreditation,
            "sample_date": self.sample_date,
            "report_date": self.report_date,
            "file_name": self.file_name,
            "sha256": self.sha256,
            "late": self.late,
        }


@dataclass(frozen=True, slots=True)
class Filed:
    """A stored version of a monthly record."""

    id: int
    owner: str
    facility: str
    year: int
    month: int
    line: str
    version: int
    category: str
    name: str
    quantity: str
    unit: str
    document: dict[str, Any]
    doc_hash: str
    late: bool
    flags: tuple[str, ...]
    reason: str | None
    filed_by: str
    filed_at: int
    lab_reports: tuple[StoredLabReport, ...] = ()

    @property
    def measured(self) -> list[str]:
        return sorted(self.document.get("parameters", {}))

    @property
    def carbon_measured(self) -> bool:
        carbon = self.document.get("parameters", {}).get(CARBON)
        return carbon is not None and "lab_report" in carbon

    def to_document(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "owner": self.owner,
            "facility": self.facility,
            "year": self.year,
            "month": self.month,
            "line": self.line,
            "version": self.version,
            "category": self.category,
            "name": self.name,
            "quantity": self.quantity,
            "unit": self.unit,
            "measured": self.measured,
            "carbon_measured": self.carbon_measured,
            "late": self.late,
            "flags": list(self.flags),
            "reason": self.reason,
            "filed_by": self.filed_by,
            "filed_at": self.filed_at,
            "doc_hash": self.doc_hash,
            "document": self.document,
            "lab_reports": [lab.to_document() for lab in self.lab_reports],
        }


@dataclass(frozen=True, slots=True)
class MonthStatus:
    month: int
    deadline: date
    status: str  # filed | late | missing | pending (not yet due)
    records: tuple[Filed, ...]

    def to_document(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "deadline": self.deadline.isoformat(),
            "status": self.status,
            "lines": [
                {
                    "line": f.line,
                    "record_id": f.id,
                    "version": f.version,
                    "category": f.category,
                    "name": f.name,
                    "quantity": f.quantity,
                    "unit": f.unit,
                    "measured": f.measured,
                    "carbon_measured": f.carbon_measured,
                    "late": f.late,
                    "flags": list(f.flags),
                    "lab_reports": [lab.to_document() for lab in f.lab_reports],
                }
                for f in self.records
            ],
        }


@dataclass(frozen=True, slots=True)
class YearStatus:
    owner: str
    facility: str
    year: int
    months: tuple[MonthStatus, ...]
    warnings: tuple[str, ...]

    @property
    def measured_months(self) -> dict[str, int]:
        """Per fuel line: the months with a lab-measured carbon content."""
        counts: dict[str, int] = {}
        for month in self.months:
            for f in month.records:
                if f.category == "fuel_combustion":
                    counts[f.line] = counts.get(f.line, 0) + int(f.carbon_measured)
        return counts

    def to_document(self) -> dict[str, Any]:
        counts = dict.fromkeys(("filed", "late", "missing", "pending"), 0)
        for month in self.months:
            counts[month.status] += 1
        return {
            "owner": self.owner,
            "facility": self.facility,
            "year": self.year,
            "filing_days": filing_days(),
            "counts": counts,
            "measured_months": self.measured_months,
            "months": [m.to_document() for m in self.months],
            "warnings": list(self.warnings),
        }


class MonthlyRecords:
    """Monthly activity records, their lab reports and files, over one database."""

    def __init__(self, engine: sa.Engine, *, clock: Callable[[], int] | None = None) -> None:
        self.engine = engine
        self.clock = clock if clock is not None else _now

    def file(
        self,
        owner: str,
        document: Any,
        files: Mapping[str, bytes] | None = None,
        *,
        by: str,
        corrects: int | None = None,
        reason: str | None = None,
    ) -> Filed:
        """File a month's record (or, with `corrects`, the next version of it).

        Args:
            owner: the filing entity, e.g. entity:demo-steel (must be the record's entity).
            document: the carbonbook.mrv.month/1 document.
            files: the lab reports' files by the names the document gives them.
            by: who files, for the audit log.
            corrects: the version this filing corrects (the current one); None for a first
                filing. Re-filing an identical first filing returns the stored one.
            reason: why a correction is made (required with `corrects`).

        Raises:
            InvalidMonthError, LabReportFileError, LabReportTooLargeError: nothing stored.
            MonthFiledError, StaleMonthError, UnknownMonthError: the version rules.
        """
        record = parse_month(document)
        _check_owner(owner, record)
        reason = _reason(reason, corrects)
        attachments = {name: inspect_file(name, data) for name, data in (files or {}).items()}
        problems = _file_problems(record, attachments)
        filed_at = self.clock()
        if not has_ended(record.year, record.month, filed_at):
            problems.append(
                Problem(
                    "month",
                    f"{record.year}-{record.month:02d} has not ended: file it after month end",
                    f"{record.year}-{record.month:02d} 尚未结束，请于月末后填报",
                )
            )
        today = local_date(filed_at)
        for lab in record.lab_reports:
            if lab.report_date > today:
                problems.append(
                    Problem(
                        f"lab_reports.{lab.report_no}.report_date",
                        f"{lab.report_date} is in the future",
                        f"{lab.report_date} 晚于今天",
                    )
                )
        if problems:
            raise InvalidMonthError(problems)
        normalised = _with_hashes(record, attachments)
        doc_hash = document_hash(normalised)
        try:
            with self.engine.begin() as conn:
                return self._store(
                    conn,
                    owner,
                    record,
                    normalised,
                    doc_hash,
                    attachments,
                    by,
                    corrects,
                    reason,
                    filed_at,
                )
        except sa.exc.IntegrityError:
            # Two filings of the same (month, line, version) at once: the other one won.
            raise StaleMonthError(
                f"{record.year}-{record.month:02d} {record.line} was filed by someone else "
                "just now: reload and correct it",
                f"{record.year}-{record.month:02d} {record.line} 刚被他人填报，请刷新后更正",
            ) from None

    def _store(
        self,
        conn: sa.Connection,
        owner: str,
        record: MonthRecord,
        normalised: dict[str, Any],
        doc_hash: str,
        attachments: dict[str, Attachment],
        by: str,
        corrects: int | None,
        reason: str | None,
        filed_at: int,
    ) -> Filed:
        current = self._current(conn, owner, record)
        where = f"{record.facility} {record.year}-{record.month:02d} {record.line}"
        if corrects is None and current is not None:
            if current.doc_hash == doc_hash:
                return current  # the same filing again (a retry): nothing changes
            raise MonthFiledError(
                f"{where} is already filed (version {current.version}): "
                "file a correction with its reason",
                f"{where} 已填报（第 {current.version} 版），请提交更正并说明原因",
                version=current.version,
            )
        if corrects is not None:
            if current is None:
                raise UnknownMonthError(f"no record of {where} to correct", f"没有 {where} 的记录")
            if current.version != corrects:
                raise StaleMonthError(
                    f"{where} is at version {current.version}, not {corrects}: reload it",
                    f"{where} 已是第 {current.version} 版（不是第 {corrects} 版），请刷新",
                    version=current.version,
                )
        cited = self._check_cited(conn, owner, normalised, attachments)
        version = 1 if current is None else current.version + 1
        flags = list(record.flags)
        late_now = is_late(record.year, record.month, filed_at)
        # The LATE flag is the first filing's: a later correction keeps it, and is flagged.
        late = late_now if current is None else current.late
        deadline = filing_deadline(record.year, record.month)
        if late:
            flags.insert(
                0, f"LATE: {where} filed after the {filing_days()}-day deadline {deadline}"
            )
        if current is not None and late_now:
            flags.append(f"version {version} corrected on {local_date(filed_at)}, after {deadline}")
        _store_files(conn, attachments, filed_at)
        record_id = allocate_ids(conn, 1 + len(record.lab_reports))
        conn.execute(
            mrv_monthly_records.insert().values(
                id=record_id,
                owner=owner,
                facility=record.facility,
                year=record.year,
                month=record.month,
                line=record.line,
                version=version,
                category=record.category,
                name=record.name,
                quantity=_text(record.quantity),
                unit=record.unit,
                document=canonical(normalised),
                doc_hash=doc_hash,
                late=late,
                flags=json.dumps(flags, ensure_ascii=False),
                reason=reason,
                filed_by=by,
                filed_at=filed_at,
            )
        )
        labs = normalised["lab_reports"]
        if labs:
            conn.execute(
                mrv_lab_reports.insert(),
                [
                    {
                        "id": record_id + 1 + i,
                        "record_id": record_id,
                        "report_no": lab["report_no"],
                        "lab": lab["lab"],
                        "accreditation": lab["accreditation"],
                        "sample_date": lab["sample_date"],
                        "report_date": lab["report_date"],
                        "file_name": lab.get("file")
                        or cited.get(lab["sha256"], lab["sha256"][:12]),
                        "sha256": lab["sha256"],
                        "late": date.fromisoformat(lab["report_date"]) > deadline,
                    }
                    for i, lab in enumerate(labs)
                ],
            )
        # The audit log names the record and the document's hash, never its content.
        auditlog.append(
            conn,
            by,
            "mrv.month.file" if version == 1 else "mrv.month.correct",
            f"month:{owner}/{record.facility}/{record.year}-{record.month:02d}/{record.line}",
            {
                "record": record_id,
                "version": version,
                "doc_hash": doc_hash,
                "late": late,
                "lab_reports": sorted({lab["sha256"] for lab in labs}),
            },
        )
        filed = self._current(conn, owner, record)
        assert filed is not None  # noqa: S101 - just inserted
        return filed

    @staticmethod
    def _check_cited(
        conn: sa.Connection,
        owner: str,
        normalised: dict[str, Any],
        attachments: dict[str, Attachment],
    ) -> dict[str, str]:
        """A file cited by hash (not attached) must be one the owner stored before: nobody
        borrows another entity's lab report by its hash. Returns the cited files' names."""
        problems = []
        names: dict[str, str] = {}
        for lab in normalised["lab_reports"]:
            if lab.get("file") in attachments:
                continue  # attached with this filing
            found = conn.execute(
                sa.select(mrv_lab_reports.c.file_name)
                .join(mrv_monthly_records, mrv_monthly_records.c.id == mrv_lab_reports.c.record_id)
                .where(
                    mrv_lab_reports.c.sha256 == lab["sha256"],
                    mrv_monthly_records.c.owner == owner,
                )
                .limit(1)
            ).first()
            if found is None:
                problems.append(
                    Problem(
                        f"lab_reports.{lab['report_no']}.sha256",
                        f"no stored lab report file {lab['sha256'][:12]}... of yours: attach it",
                        "没有此哈希的已存检测报告文件，请附上文件",
                    )
                )
            else:
                names[lab["sha256"]] = found.file_name
        if problems:
            raise InvalidMonthError(problems)
        return names

    def _current(self, conn: sa.Connection, owner: str, record: MonthRecord) -> Filed | None:
        rows = self._rows(
            conn,
            owner,
            record.facility,
            record.year,
            month=record.month,
            line=record.line,
            latest=True,
        )
        return rows[0] if rows else None

    def _rows(
        self,
        conn: sa.Connection,
        owner: str,
        facility: str,
        year: int,
        *,
        month: int | None = None,
        line: str | None = None,
        latest: bool,
    ) -> list[Filed]:
        t = mrv_monthly_records
        query = sa.select(t).where(t.c.owner == owner, t.c.facility == facility, t.c.year == year)
        if month is not None:
            query = query.where(t.c.month == month)
        if line is not None:
            query = query.where(t.c.line == line)
        rows = list(conn.execute(query.order_by(t.c.month, t.c.line, t.c.version)))
        if latest:
            newest: dict[tuple[int, str], sa.Row[Any]] = {}
            for row in rows:
                newest[(row.month, row.line)] = row
            rows = list(newest.values())
        labs: dict[int, list[StoredLabReport]] = {}
        if rows:
            for lab in conn.execute(
                sa.select(mrv_lab_reports)
                .where(mrv_lab_reports.c.record_id.in_([r.id for r in rows]))
                .order_by(mrv_lab_reports.c.id)
            ):
                labs.setdefault(lab.record_id, []).append(
                    StoredLabReport(
                        lab.id,
                        lab.report_no,
                        lab.lab,
                        lab.accreditation,
                        lab.sample_date,
                        lab.report_date,
                        lab.file_name,
                        lab.sha256,
                        bool(lab.late),
                    )
                )
        return [_filed(row, tuple(labs.get(row.id, ()))) for row in rows]

    # -- reading --------------------------------------------------------------------------------

    def history(self, owner: str, facility: str, year: int, month: int, line: str) -> list[Filed]:
        """Every version of one month's line, oldest first."""
        with self.engine.connect() as conn:
            found = self._rows(conn, owner, facility, year, month=month, line=line, latest=False)
        if not found:
            raise UnknownMonthError(
                f"no record of {facility} {year}-{month:02d} {line}",
                f"没有 {facility} {year}-{month:02d} {line} 的记录",
            )
        return found

    def current(self, owner: str, facility: str, year: int) -> list[Filed]:
        """The current version of every (month, line) of a facility-year."""
        with self.engine.connect() as conn:
            return self._rows(conn, owner, facility, year, latest=True)

    def status(self, owner: str, facility: str, year: int) -> YearStatus:
        """The year's twelve months: filed, late, missing (past the deadline) or pending."""
        filed = self.current(owner, facility, year)
        now = self.clock()
        lines = sorted({f.line for f in filed})
        months: list[MonthStatus] = []
        warnings: list[str] = []
        for month in range(1, 13):
            records = tuple(f for f in filed if f.month == month)
            due = is_late(year, month, now)
            if records:
                status = "late" if any(f.late for f in records) else "filed"
                missing = sorted(set(lines) - {f.line for f in records})
                if missing and due:
                    warnings.append(f"{year}-{month:02d}: no record of {', '.join(missing)}")
            else:
                status = "missing" if due else "pending"
                if due:
                    warnings.append(
                        f"{year}-{month:02d}: missing (due {filing_deadline(year, month)})"
                    )
            for f in records:
                warnings.extend(f"{year}-{month:02d} {f.line}: {flag}" for flag in f.flags)
            months.append(MonthStatus(month, filing_deadline(year, month), status, records))
        return YearStatus(owner, facility, year, tuple(months), tuple(warnings))

    def lab_report_file(self, lab_report_id: int) -> tuple[StoredLabReport, str, str, bytes]:
        """A lab report, its record's owner, and its file (media type and bytes)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(
                    mrv_lab_reports,
                    mrv_monthly_records.c.owner,
                    mrv_lab_report_files.c.media_type,
                    mrv_lab_report_files.c.content,
                )
                .join(mrv_monthly_records, mrv_monthly_records.c.id == mrv_lab_reports.c.record_id)
                .join(
                    mrv_lab_report_files, mrv_lab_report_files.c.sha256 == mrv_lab_reports.c.sha256
                )
                .where(mrv_lab_reports.c.id == lab_report_id)
            ).first()
        if row is None:
            raise NotFoundError(
                f"no lab report {lab_report_id}", f"没有编号为 {lab_report_id} 的检测报告"
            )
        lab = StoredLabReport(
            row.id,
            row.report_no,
            row.lab,
            row.accreditation,
            row.sample_date,
            row.report_date,
            row.file_name,
            row.sha256,
            bool(row.late),
        )
        return lab, row.owner, row.media_type, bytes(row.content)

    # -- the year ---------------------------------------------------------------------------------

    def yearly_document(self, owner: str, facility: str, year: int) -> YearInput:
        """The yearly report input built from the current monthly records, with a `monthly`
        section naming each record's version and hash, and the filing warnings (LATE
        records and lab reports, missing months): the verifier sees what the figures rest on.
        """
        filed = self.current(owner, facility, year)
        if not filed:
            raise UnknownMonthError(
                f"no monthly records of {facility} for {year}",
                f"{facility} 没有 {year} 年的月度记录",
            )
        built = aggregate([parse_month(f.document) for f in filed])
        status = self.status(owner, facility, year)
        built.document["monthly"] = {
            "records": [
                {
                    "month": f.month,
                    "line": f.line,
                    "version": f.version,
                    "doc_hash": f.doc_hash,
                    "late": f.late,
                }
                for f in filed
            ],
            "measured_months": status.measured_months,
            "warnings": [*status.warnings, *built.notes],
        }
        return built

    def draft_year(
        self,
        owner: str,
        facility: str,
        year: int,
        reports: Reports,
        *,
        by: str,
        scheme: str = "national",
    ) -> tuple[Report, list[str]]:
        """Create the facility-year's draft report from the monthly records, or update the
        existing draft (or returned report) through the report workflow.

        Returns:
            the report and its warnings: the computation's, then the filing warnings.
        """
        built = self.yearly_document(owner, facility, year)
        existing = [r for r in reports.find(owner=owner, year=year) if r.facility == facility]
        if not existing:
            report = reports.create(owner, built.document, by=by, scheme=scheme)
        elif existing[0].doc_hash == document_hash(built.document):
            report = existing[0]
        else:
            report = reports.update(
                existing[0].id, owner, built.document, version=existing[0].version, by=by
            )
        return report, list(report.result["warnings"])


def _store_files(conn: sa.Connection, attachments: dict[str, Attachment], at: int) -> None:
    """Each file once, by its hash (the same scan filed for two months is stored once)."""
    for attachment in attachments.values():
        exists = conn.execute(
            sa.select(mrv_lab_report_files.c.sha256).where(
                mrv_lab_report_files.c.sha256 == attachment.sha256
            )
        ).first()
        if exists is None:
            conn.execute(
                mrv_lab_report_files.insert().values(
                    sha256=attachment.sha256,
                    media_type=attachment.media_type,
                    size_bytes=len(attachment.data),
                    content=attachment.data,
                    stored_at=at,
                )
            )


def _now() -> int:
    return now_us()  # looked up at each call, so a test can set the clock of the API


def _filed(row: sa.Row[Any], labs: tuple[StoredLabReport, ...]) -> Filed:
    return Filed(
        id=row.id,
        owner=row.owner,
        facility=row.facility,
        year=row.year,
        month=row.month,
        line=row.line,
        version=row.version,
        category=row.category,
        name=row.name,
        quantity=row.quantity,
        unit=row.unit,
        document=json.loads(row.document),
        doc_hash=row.doc_hash,
        late=bool(row.late),
        flags=tuple(json.loads(row.flags)),
        reason=row.reason,
        filed_by=row.filed_by,
        filed_at=row.filed_at,
        lab_reports=labs,
    )


def _check_owner(owner: str, record: MonthRecord) -> None:
    if owner.startswith(ENTITY_PREFIX) and record.entity_id != owner.removeprefix(ENTITY_PREFIX):
        mine = owner.removeprefix(ENTITY_PREFIX)
        raise InvalidMonthError(
            [
                Problem(
                    "entity.id",
                    f"{record.entity_id!r} is not your entity ({mine!r})",
                    f"{record.entity_id!r} 不是贵单位（{mine!r}）",
                )
            ]
        )


def _reason(reason: str | None, corrects: int | None) -> str | None:
    text = (reason or "").strip()
    if corrects is None:
        if text:
            raise InvalidMonthError(
                [Problem("reason", "a reason goes with a correction", "更正时才需填写原因")]
            )
        return None
    if not text or len(text) > MAX_REASON:
        raise InvalidMonthError(
            [
                Problem(
                    "reason",
                    f"say why the record is corrected (1-{MAX_REASON} characters)",
                    f"请说明更正原因（1-{MAX_REASON} 字）",
                )
            ]
        )
    return text


def _file_problems(record: MonthRecord, attachments: dict[str, Attachment]) -> list[Problem]:
    """Every named file attached (unless cited by its hash too), every attached file named,
    and an attached file's hash the one cited."""
    problems: list[Problem] = []
    for lab in record.lab_reports:
        where = f"lab_reports.{lab.report_no}"
        attached = attachments.get(lab.file) if lab.file is not None else None
        if attached is None and lab.sha256 is None:
            problems.append(
                Problem(
                    f"{where}.file",
                    f"file {lab.file!r} is not attached",
                    f"未附上文件 {lab.file!r}",
                )
            )
        elif attached is not None and lab.sha256 is not None and attached.sha256 != lab.sha256:
            problems.append(
                Problem(
                    f"{where}.sha256",
                    f"{lab.file!r} attached has sha256 {attached.sha256[:12]}..., "
                    f"not {lab.sha256[:12]}...",
                    f"所附文件 {lab.file!r} 的 sha256 与所填不符",
                )
            )
    named = {lab.file for lab in record.lab_reports if lab.file is not None}
    problems.extend(
        Problem("files", f"{name!r} is attached but no lab report names it", f"{name!r} 未被引用")
        for name in sorted(set(attachments) - named)
    )
    return problems


def _with_hashes(record: MonthRecord, attachments: dict[str, Attachment]) -> dict[str, Any]:
    """The record as stored: every lab report with its file's sha256 and media type."""
    document = record.to_document()
    for lab in document["lab_reports"]:
        if lab.get("file") in attachments:
            attachment = attachments[lab["file"]]
            lab["sha256"] = attachment.sha256
            lab["media_type"] = attachment.media_type
    return document
