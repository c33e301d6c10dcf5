"""The credit gate (个人碳账本的记账关口): the one place personal credits are quantified and posted.

Entry points (every path that credits or debits a person's grams goes through one of them):
- `credit_partner(raws, scope, requested, now_us)`: a partner's signed batch. The partner's
  scope (the one methodology the operator set, its behaviours and evidence tiers) binds it; each
  act counts under the version of that methodology in force on its local day; the claim window
  (the version's `claim_window_days`, 30 by default) applies.
- `credit_file(lines, methodology)`: an operator's back-office file, interchange imports and
  approved photo check-ins: the named version and its in-force dates, no scope, no window.
- `credit_events(raws, methodology, platform)`: a trusted caller's events of one platform under
  a version it names (meter readings turned into savings): consent and in-force dates.
- `reverse(platform, event_ids, actor)`: a partner's correction (grams and points back, audited).
- `reconcile(target, person)`: stored records re-quantified by the same rules.

Each accepted event becomes milligrams of CO2e (asset `CO2E_MG`) credited by the scheme's
issuer account, with the event identity `platform:event_id` as the transfer's idempotency key;
each person's Asia/Shanghai day earns points across methodologies, rounded once, topped up as
the day's total grows. Events are processed in chunks: one database transaction and one ledger
batch per chunk, so a crash loses at most the chunk in flight (and a retry credits nothing
twice).

Refusals are per event (the rest of the batch goes on), each with a code:
BAD_EVENT (not an object, a missing or mistyped field), BAD_TIME (no offset, or in the future
beyond 5 minutes), UNKNOWN_BEHAVIOUR, BAD_UNIT, BAD_QUANTITY, BAD_EVIDENCE, DAILY_CAP,
NOT_IN_FORCE, OUTSIDE_CLAIM_WINDOW, CONFLICTING_EVENT (a known id with other content),
NOT_LINKED (the person has not linked the platform), WRONG_PLATFORM (an event of another
platform than the signer), METHODOLOGY_NOT_IN_SCOPE, BEHAVIOUR_NOT_IN_SCOPE,
EVIDENCE_NOT_IN_SCOPE.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from carbonbook import auditlog
from carbonbook.db.bulk import as_list, fetch_all, insert_rows, marker, one_of
from carbonbook.db.engine import is_postgres
from carbonbook.db.schema import personal_events
from carbonbook.errors import DomainError
from carbonbook.ledger import AccountFlags, Batch, Ledger, TransferRequest
from carbonbook.methodology import errors as qerrors
from carbonbook.methodology.registry import Registry, all_methodologies, default_registry
from carbonbook.numbers import D, NotADecimalError, mg_to_grams_text, to_units_half_up
from carbonbook.personal.publishing import load_published

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from carbonbook.methodology.model import Methodology

# A credited act as reconcile reads it: (person, behaviour, quantity, unit, evidence, local day).
Record = tuple[str, str, Decimal, str, str, str]

ZERO = Decimal(0)
MG_PER_G = Decimal(1000)
CHUNK = 20_000  # events a transaction: a bigger one shares more pages at commit (and RSS)
MAX_REMEMBERED_ACCOUNTS = 1_000_000  # people whose account ids a run keeps (~200 bytes each)
CREDITED, CROSS_PLATFORM_DUPLICATE, REVERSED = 0, 1, 2
FIELDS = ("platform", "event_id", "person", "behaviour", "quantity", "unit", "occurred_at")


def _now_us() -> int:
    return time.time_ns() // 1000


@dataclass(slots=True)
class Event:
    line: int
    platform: str
    event_id: str
    person: str
    behaviour: str
    quantity: Decimal
    quantity_text: str
    unit: str
    occurred_at: int  # microseconds, UTC
    local_day: str
    evidence: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.platform, self.event_id)


@dataclass(slots=True)
class IngestReport:
    methodology: str
    accepted: int = 0
    duplicates: int = 0
    cross_platform_duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    registered: list[str] = field(default_factory=list)
    grams_mg: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    points: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # The ledger batches of this run (its credited events carry their id) and the few credited
    # events of a chunk that posted no batch: the run's records, read back for the document
    # instead of being held in memory (a file of a million events keeps memory flat).
    batch_ids: list[int] = field(default_factory=list)
    unbatched: list[Record] = field(default_factory=list)
    keep_results: bool = False  # per-event results, for a partner's request only
    # Quantities repeat (1 order, 2.5 km): each (behaviour, quantity, unit, evidence) is
    # quantified once per run, its milligrams or its refusal reused.
    quantified: dict[tuple[str, str, str, str, str], int | qerrors.QuantifyError] = field(
        default_factory=dict, repr=False
    )
    results: list[dict[str, Any]] = field(default_factory=list)  # per event, in input order
    # Each person's (CO2E_MG, POINT) account ids, read once per run and kept once their chunk
    # committed: ids never change, and a person recurs in chunk after chunk of a long file.
    accounts: dict[str, tuple[int, int]] = field(default_factory=dict, repr=False)

    def remember_accounts(self, accounts: dict[str, tuple[int, int]]) -> None:
        if len(self.accounts) + len(accounts) > MAX_REMEMBERED_ACCOUNTS:
            self.accounts.clear()  # a bound on memory, not a correctness rule
        self.accounts.update(accounts)

    def result(self, entry: dict[str, Any]) -> None:
        if self.keep_results:
            self.results.append(entry)

    def reject(self, line: int, event_id: str | None, code: str, message: str) -> None:
        entry: dict[str, Any] = {
            "event_id": event_id,
            "code": code,
            "line": line,
            "message": message,
        }
        self.rejected.append(entry)
        self.result({"event_id": event_id, "status": "rejected", "code": code})

    def to_document(self, records: Iterable[Record] | None = None) -> dict[str, Any]:
        """The run's report; with `records` (`Personal.credited_records`), how its credited
        events read under every other methodology version."""
        people_doc = {
            person: {
                "grams": mg_to_grams_text(self.grams_mg[person]),
                "points": self.points[person],
            }
            for person in sorted(set(self.grams_mg) | set(self.points))
        }
        document: dict[str, Any] = {
            "methodology": self.methodology,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "cross_platform_duplicates": self.cross_platform_duplicates,
            "rejected": self.rejected,
            "people": people_doc,
            "registered": self.registered,
        }
        if records is not None:
            document["reconciled_under"] = reconcile_events(records, self.methodology)
        return document


def reconcile_events(
    events: Iterable[Record],
    source: str,
    targets: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Re-quantify credited records under other methodologies, by the gate's rules.

    Per target methodology and person: the grams under it, with each act's evidence weight,
    the target's daily caps per person-day and behaviour (an act past the cap counts
    nothing, as the gate would refuse it) and its in-force dates; and the behaviours it does
    not cover, cannot quantify or is not in force for (never guessed).
    """
    known_versions = all_methodologies()
    chosen = [known_versions[ref] for ref in (targets or sorted(known_versions))]
    chosen = [m for m in chosen if m.ref != source]
    # One pass over the records (they may stream from the database): per target and person
    # the milligrams, what it covered, and the behaviours it does not cover.
    totals: dict[str, dict[str, int]] = {m.ref: defaultdict(int) for m in chosen}
    uncovered: dict[str, dict[str, set[str]]] = {m.ref: defaultdict(set) for m in chosen}
    used: dict[tuple[str, str, str, str], Decimal] = defaultdict(Decimal)
    in_force: dict[tuple[str, str], bool] = {}
    quantified: dict[Act, int | None] = {}
    for person, behaviour, quantity, unit, evidence, day in events:
        for methodology in chosen:
            ref = methodology.ref
            totals[ref][person] += 0
            if (ref, day) not in in_force:
                in_force[(ref, day)] = methodology.in_force_on(date.fromisoformat(day))
            mg = _requantify(methodology, (ref, behaviour, quantity, unit, evidence), quantified)
            if mg is None or not in_force[(ref, day)]:
                uncovered[ref][person].add(behaviour)
                continue
            cap = methodology.behaviours[behaviour].daily_cap_units
            key = (ref, person, day, behaviour)
            if used[key] + quantity > cap:
                continue  # the gate refuses an act past the cap whole (DAILY_CAP)
            used[key] += quantity
            totals[ref][person] += mg
    result: dict[str, Any] = {}
    for methodology in chosen:
        ref = methodology.ref
        doc: dict[str, Any] = {}
        for person, mg in sorted(totals[ref].items()):
            doc[person] = {"grams": mg_to_grams_text(mg)}
            if uncovered[ref].get(person):
                doc[person]["uncovered"] = sorted(uncovered[ref][person])
        result[ref] = doc
    return result


Act = tuple[str, str, Decimal, str, str]  # (ref, behaviour, quantity, unit, evidence)


def _requantify(methodology: Methodology, act: Act, cache: dict[Act, int | None]) -> int | None:
    """An act's milligrams under a target, or None where it cannot quantify it; the same few
    acts recur (1 km, 1 order), so each is quantified once per target."""
    if act not in cache:
        _, behaviour, quantity, unit, evidence = act
        try:
            cache[act] = methodology.quantify(behaviour, quantity, unit, evidence)
        except qerrors.QuantifyError:
            cache[act] = None
    return cache[act]


def parse_event(  # noqa: PLR0911 - one return per refusal, in order
    raw: Any, line: int, zone: ZoneInfo
) -> tuple[Event | None, tuple[str | None, str, str] | None]:
    """One event from its JSON value, or (event_id, code, message) of its refusal."""
    if not isinstance(raw, dict):
        return None, (None, "BAD_EVENT", "an event must be a JSON object")
    event_id = raw.get("event_id") if isinstance(raw.get("event_id"), str) else None
    for name in FIELDS:
        if not isinstance(raw.get(name), str) or not raw[name].strip():
            return None, (event_id, "BAD_EVENT", f"field {name!r} must be a non-empty string")
    evidence = raw.get("evidence", "operator")
    if not isinstance(evidence, str):
        return None, (event_id, "BAD_EVENT", "field 'evidence' must be a string")
    try:
        occurred = datetime.fromisoformat(raw["occurred_at"])
    except ValueError:
        return None, (event_id, "BAD_TIME", f"occurred_at {raw['occurred_at']!r} is not ISO 8601")
    if occurred.tzinfo is None:
        return None, (event_id, "BAD_TIME", "occurred_at needs a UTC offset")
    try:
        stamp = occurred.timestamp()
        local = occurred.astimezone(zone).date().isoformat()
    except (OverflowError, ValueError):  # 0001-01-01T00:00+08:00 is before year 1 in UTC
        return None, (event_id, "BAD_TIME", f"occurred_at {raw['occurred_at']!r} is out of range")
    if stamp > time.time() + 300:
        return None, (event_id, "BAD_TIME", "occurred_at is in the future")
    try:
        quantity = _quantity(raw["quantity"])
    except NotADecimalError:
        return None, (event_id, "BAD_QUANTITY", f"quantity {raw['quantity']!r} is not a decimal")
    return (
        Event(
            line=line,
            platform=raw["platform"],
            event_id=raw["event_id"],
            person=raw["person"],
            behaviour=raw["behaviour"],
            quantity=quantity,
            quantity_text=raw["quantity"],
            unit=raw["unit"],
            occurred_at=int(stamp * 1_000_000),
            local_day=local,
            evidence=evidence,
        ),
        None,
    )


@functools.lru_cache(maxsize=4096)
def _quantity(text: str) -> Decimal:
    """An event's quantity (the same few texts recur: "1", "2.5"); Decimals are immutable."""
    return D(text)


class CreditGate:
    """Quantifies and credits personal acts: the only personal code that posts credits."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.ledger = Ledger(engine)

    def credit_file(
        self,
        lines: Iterable[str],
        methodology: Methodology,
        progress: Callable[[int], None] | None = None,
    ) -> IngestReport:
        """Ingest a JSONL file of partner events (an operator's import: unknown people are
        registered)."""
        report = IngestReport(methodology.ref)
        zone = ZoneInfo(methodology.timezone)
        seen: dict[tuple[str, str], str] = {}
        count = 0
        self.ledger.ensure_assets()
        for chunk in _chunks(_numbered(lines), CHUNK):
            events = []
            for line_no, text in chunk:
                try:
                    raw = json.loads(text)
                except json.JSONDecodeError as exc:
                    report.reject(line_no, None, "BAD_EVENT", f"not JSON ({exc.msg})")
                    continue
                event = _screen(raw, line_no, zone, seen, report)
                if event is not None:
                    events.append(event)
            # What the database now holds is found there next time: `seen` keeps only the
            # identities it refused, so it stays small however long the file is.
            for key in self._ingest_chunk(
                events, methodology, report, register=True, platform=None
            ):
                seen.pop(key, None)
            count += len(chunk)
            if progress is not None:
                progress(count)
        return report

    def credit_partner(
        self,
        raws: list[Any],
        scope: PartnerScope,
        requested: str | None = None,
        now_us: int | None = None,
    ) -> IngestReport:
        """A partner's signed batch, bound by the partner's scope and the claim window.

        The partner's one methodology (set by the operator, `carbonbook partner add`) decides;
        a request naming another is refused METHODOLOGY_NOT_IN_SCOPE event by event. Each act
        is counted under the version of that methodology in force on its local day (a later
        version supersedes at its effective date), and must be inside that version's claim
        window (OUTSIDE_CLAIM_WINDOW). Behaviours and evidence tiers outside the partner's
        scope are refused BEHAVIOUR_NOT_IN_SCOPE and EVIDENCE_NOT_IN_SCOPE.
        """
        registry = current_registry(self.engine)
        now = _now_us() if now_us is None else now_us
        refusal = _scope_refusal(scope, requested)
        report = IngestReport(scope.methodology or "-", keep_results=True)
        ident = scope.methodology.split("@", 1)[0] if scope.methodology else ""
        named = registry.versions(ident)
        zone = ZoneInfo(named[0].timezone if named else "Asia/Shanghai")
        seen: dict[tuple[str, str], str] = {}
        groups: dict[str, list[Event]] = {}
        by_ref: dict[str, Methodology] = {}
        in_force: dict[str, Methodology | None] = {}
        self.ledger.ensure_assets()
        for i, raw in enumerate(raws, start=1):
            event = _screen(raw, i, zone, seen, report)
            if event is None:
                continue
            if refusal is not None:
                report.reject(event.line, event.event_id, *refusal)
                continue
            if event.local_day not in in_force:
                try:
                    in_force[event.local_day] = registry.in_force(
                        ident, date.fromisoformat(event.local_day)
                    )
                except qerrors.UnknownMethodologyError:
                    in_force[event.local_day] = None
            version = in_force[event.local_day]
            if version is None:
                report.reject(
                    event.line,
                    event.event_id,
                    "NOT_IN_FORCE",
                    f"no version of {ident} is in force on {event.local_day}",
                )
                continue
            by_ref[version.ref] = version
            groups.setdefault(version.ref, []).append(event)
        for ref, events in groups.items():
            for start in range(0, len(events), CHUNK):
                self._ingest_chunk(
                    events[start : start + CHUNK],
                    by_ref[ref],
                    report,
                    register=False,
                    platform=scope.code,
                    now_us=now,
                    scope=scope,
                )
        return report

    def reverse(self, platform: str, event_ids: list[str], actor: str) -> dict[str, Any]:
        """A partner's correction: reverse its own credited events, in one batch.

        Each named event's grams go back to the scheme's issuer, its person-day loses what
        it no longer earns in points (never below what the person still holds), and the event
        is marked reversed (its id stays taken: a re-send with other content is
        CONFLICTING_EVENT; the corrected act comes with a new id). Reversing again changes
        nothing (`already_reversed`); an id the platform never sent is UNKNOWN_EVENT. Audited.
        """
        wanted = list(dict.fromkeys(event_ids))
        results: dict[str, dict[str, Any]] = {}
        registry = current_registry(self.engine)
        with self.engine.begin() as conn:
            rows = {
                row.event_id: row
                for row in conn.execute(
                    sa.select(personal_events).where(
                        personal_events.c.platform == platform,
                        personal_events.c.event_id.in_(wanted),
                    )
                )
            }
            chosen = []
            for event_id in wanted:
                row = rows.get(event_id)
                if row is None:
                    results[event_id] = {
                        "event_id": event_id,
                        "status": "rejected",
                        "code": "UNKNOWN_EVENT",
                    }
                elif row.status == REVERSED:
                    results[event_id] = {"event_id": event_id, "status": "already_reversed"}
                else:
                    chosen.append(row)
            transfers, points = self._reversal_transfers(conn, chosen, registry)
            for row in chosen:
                mg = row.reduction_mg if row.status == CREDITED else 0
                results[row.event_id] = {
                    "event_id": row.event_id,
                    "status": "reversed",
                    "grams": mg_to_grams_text(mg),
                }
            if chosen:
                conn.execute(
                    personal_events.update()
                    .where(
                        personal_events.c.platform == platform,
                        personal_events.c.event_id.in_([r.event_id for r in chosen]),
                    )
                    .values(status=REVERSED)
                )
            if transfers:
                digest = hashlib.sha256(
                    "\n".join(t.key or "" for t in transfers).encode()
                ).hexdigest()[:32]
                self.ledger.post_in(conn, Batch("personal", f"reverse:{digest}", transfers))
            if chosen:
                auditlog.append(
                    conn,
                    actor,
                    "personal.reverse",
                    f"partner:{platform}",
                    {
                        "event_ids": [r.event_id for r in chosen],
                        "grams": mg_to_grams_text(
                            sum(r.reduction_mg for r in chosen if r.status == CREDITED)
                        ),
                        "points": points,
                    },
                )
        ordered = [results[e] for e in wanted]
        return {
            "reversed": sum(1 for r in ordered if r["status"] == "reversed"),
            "points": points,
            "results": ordered,
        }

    def _reversal_transfers(
        self, conn: sa.Connection, rows: list[Any], registry: Registry
    ) -> tuple[list[TransferRequest], int]:
        """The debits of a reversal (grams per event, points per person-day) and the days'
        totals brought down to match; returns the transfers and the points debited."""
        transfers: list[TransferRequest] = []
        debited = 0
        holding: dict[int, int] = {}
        by_ref: dict[str, list[Any]] = defaultdict(list)
        for row in rows:
            if row.status == CREDITED:
                by_ref[row.methodology].append(row)
        for ref, credited in sorted(by_ref.items()):
            methodology = registry.get(ref)
            scheme = f"scheme:{methodology.id}"
            mg_issuer = self.ledger.open_account_in(
                conn, scheme, "CO2E_MG", "issuer", AccountFlags.ISSUER
            )
            pt_issuer = self.ledger.open_account_in(
                conn, scheme, "POINT", "issuer", AccountFlags.ISSUER
            )
            days = _load_days(conn, ref, {(r.person, r.local_day) for r in credited})
            first: dict[tuple[str, str], str] = {}
            for row in credited:
                account = self.ledger.open_account_in(conn, f"person:{row.person}", "CO2E_MG")
                key = f"reverse:{row.platform}:{row.event_id}"
                # Grams already moved on (a bridge's issued tonnes) cannot come back here: the
                # debit takes what the account still holds.
                held = holding.setdefault(account.id, max(account.available, 0))
                take_mg = min(row.reduction_mg, held)
                if take_mg > 0:
                    holding[account.id] -= take_mg
                    transfers.append(
                        TransferRequest(
                            account.id, mg_issuer.id, "CO2E_MG", take_mg, "reversal", key
                        )
                    )
                day = days[(row.person, row.local_day)]
                day["mg"] -= row.reduction_mg
                units = day["units"]
                units[row.behaviour] = units.get(row.behaviour, ZERO) - D(row.quantity)
                first.setdefault((row.person, row.local_day), key)
            for (person, day_text), day in sorted(days.items()):
                excess = day["points"] + day["other_points"] - day_points(methodology, day)
                wallet = self.ledger.open_account_in(conn, f"person:{person}", "POINT")
                # Points already spent stay spent: the debit takes what the person holds.
                take = min(excess, max(wallet.available, 0))
                if take > 0:
                    day["points"] -= take
                    debited += take
                    transfers.append(
                        TransferRequest(
                            wallet.id,
                            pt_issuer.id,
                            "POINT",
                            take,
                            "reversal_points",
                            f"{first[(person, day_text)]}:points",
                        )
                    )
            _save_days(conn, ref, days)
        return transfers, debited

    def credit_events(
        self, raws: list[Any], methodology: Methodology, platform: str
    ) -> IngestReport:
        """A trusted caller's events of `platform` under a version it names (meter readings
        turned into events): only people who linked `platform` are accepted; the version's
        in-force dates apply, no partner scope and no claim window (the caller binds those)."""
        report = IngestReport(methodology.ref, keep_results=True)
        zone = ZoneInfo(methodology.timezone)
        seen: dict[tuple[str, str], str] = {}
        events = []
        self.ledger.ensure_assets()
        for i, raw in enumerate(raws, start=1):
            event = _screen(raw, i, zone, seen, report)
            if event is not None:
                events.append(event)
        for start in range(0, len(events), CHUNK):
            self._ingest_chunk(
                events[start : start + CHUNK],
                methodology,
                report,
                register=False,
                platform=platform,
            )
        return report

    def _ingest_chunk(
        self,
        events: list[Event],
        methodology: Methodology,
        report: IngestReport,
        *,
        register: bool,
        platform: str | None,
        now_us: int | None = None,
        scope: PartnerScope | None = None,
    ) -> set[tuple[str, str]]:
        """Screen, quantify, post and store one chunk; returns the identities the database
        holds now among the chunk's (stored before, or stored now).

        `now_us` sets the claim window's clock (signed partner requests); None for an
        operator's back-office load, which has none. The version's in-force dates apply to
        every path (NOT_IN_FORCE)."""
        if not events:
            return set()
        earliest = _earliest_claimable(methodology, now_us)
        with self.engine.begin() as conn:
            stored = _stored_identities(conn, [e.key for e in events])
            linked = _linked(conn, platform, {e.person for e in events}) if platform else set()
            days = _load_days(conn, methodology.ref, {(e.person, e.local_day) for e in events})
            neighbours = _recent_events(conn, events, methodology.cross_platform_window_minutes)
            accepted: list[tuple[Event, int, int]] = []  # event, mg, status
            keep = report.keep_results
            rules = _Rules(methodology, stored, platform, linked, earliest, scope)
            for event in events:
                if event.key in stored and stored[event.key] == _content(event):
                    report.duplicates += 1
                    report.result({"event_id": event.event_id, "status": "duplicate"})
                    continue
                refusal = rules.refusal(event)
                if refusal is not None:
                    report.reject(event.line, event.event_id, *refusal)
                    continue
                try:
                    mg = _quantify(methodology, event, report.quantified)
                    _check_cap(methodology, days, event)
                except qerrors.QuantifyError as exc:
                    report.reject(event.line, event.event_id, exc.code, exc.message)
                    continue
                if _is_cross_platform_duplicate(event, neighbours, methodology):
                    status, mg = CROSS_PLATFORM_DUPLICATE, 0
                    report.cross_platform_duplicates += 1
                    report.result(
                        {"event_id": event.event_id, "status": "cross_platform_duplicate"}
                    )
                else:
                    status = CREDITED
                    _count_units(days, event)
                    if keep:  # a file's run keeps no per-event results: skip building them
                        report.result(
                            {
                                "event_id": event.event_id,
                                "status": "accepted",
                                "grams": mg_to_grams_text(mg),
                            }
                        )
                neighbours[(event.person, event.behaviour)].append(
                    (event.occurred_at, event.platform)
                )
                accepted.append((event, mg, status))
            if not accepted:
                return set(stored)
            batch_id, accounts = self._post(
                conn, accepted, methodology, days, report, register=register
            )
            now = _now_us()
            _insert_events(
                conn,
                [
                    (
                        e.platform,
                        e.event_id,
                        e.person,
                        e.behaviour,
                        e.quantity_text,
                        e.unit,
                        e.evidence,
                        e.occurred_at,
                        e.local_day,
                        methodology.ref,
                        mg,
                        status,
                        batch_id,
                        now,
                    )
                    for e, mg, status in accepted
                ],
            )
            _save_days(conn, methodology.ref, days)
        report.remember_accounts(accounts)
        _tally(report, accepted, batch_id)
        return set(stored) | {event.key for event, _, _ in accepted}

    def _post(
        self,
        conn: sa.Connection,
        accepted: list[tuple[Event, int, int]],
        methodology: Methodology,
        days: dict[tuple[str, str], dict[str, Any]],
        report: IngestReport,
        *,
        register: bool,
    ) -> tuple[int | None, dict[str, tuple[int, int]]]:
        """Post the chunk's grams and points; returns the batch (None when nothing moved) and
        the chunk's people's account ids."""
        scheme = f"scheme:{methodology.id}"
        mg_issuer = self.ledger.open_account_in(
            conn, scheme, "CO2E_MG", "issuer", AccountFlags.ISSUER
        )
        pt_issuer = self.ledger.open_account_in(
            conn, scheme, "POINT", "issuer", AccountFlags.ISSUER
        )
        accounts = self._accounts_of(
            conn, list(dict.fromkeys(e.person for e, _, _ in accepted)), report, register=register
        )
        transfers: list[TransferRequest] = []
        metas: dict[str, str] = {}  # one JSON text per day, not one per transfer

        def day_meta(day: str) -> str:
            meta = metas.get(day)
            if meta is None:  # keys sorted, as TransferRequest.move writes them
                meta = metas[day] = json.dumps(
                    {"day": day, "methodology": methodology.ref},
                    ensure_ascii=False,
                    separators=(",", ":"),
                )
            return meta

        for event, mg, status in accepted:
            if status == CREDITED and mg > 0:
                meta = day_meta(event.local_day)
                transfers.append(
                    TransferRequest(
                        mg_issuer.id,
                        accounts[event.person][0],
                        "CO2E_MG",
                        mg,
                        event.behaviour,
                        f"{event.platform}:{event.event_id}",
                        meta=meta,
                    )
                )
                day = days[(event.person, event.local_day)]
                day["mg"] += mg
                # The day's top-up is keyed by an act that caused it: after a reversal the
                # day may reach the same points again, and that top-up is a new transfer.
                day.setdefault("first", transfers[-1].key)
        for (person, day_text), day in sorted(days.items()):
            owed = day_points(methodology, day) - day["points"] - day["other_points"]
            if owed > 0 and person in accounts:
                day["points"] += owed
                report.points[person] += owed
                transfers.append(
                    TransferRequest(
                        pt_issuer.id,
                        accounts[person][1],
                        "POINT",
                        owed,
                        "daily_points",
                        f"points:{person}:{day_text}:{methodology.ref}:{day['points']}"
                        f":{day.get('first', '')}",
                        meta=day_meta(day_text),
                    )
                )
        if not transfers:
            return None, accounts
        digest = hashlib.sha256("\n".join(t.key or "" for t in transfers).encode()).hexdigest()[:32]
        result = self.ledger.post_in(conn, Batch("personal", f"ingest:{digest}", transfers))
        return result.batch_id, accounts

    def _accounts_of(
        self, conn: sa.Connection, handles: list[str], report: IngestReport, *, register: bool
    ) -> dict[str, tuple[int, int]]:
        """Each person's (CO2E_MG, POINT) account ids, set-wise: one read of the people, one
        of their accounts, one insert of each that is missing (a chunk of new people costs
        a handful of statements, not two per person). People the run met before are not read
        again."""
        known = report.accounts
        result = {h: known[h] for h in handles if h in known}
        if len(result) < len(handles):
            result.update(
                self._read_accounts_of(
                    conn, [h for h in handles if h not in known], report, register=register
                )
            )
        return result

    def _read_accounts_of(
        self, conn: sa.Connection, handles: list[str], report: IngestReport, *, register: bool
    ) -> dict[str, tuple[int, int]]:
        owners: dict[str, str] = dict(
            fetch_all(
                conn,
                f"SELECT handle, owner FROM people WHERE handle {one_of(conn)}",
                (as_list(conn, handles),),
            )
        )
        missing = [h for h in handles if h not in owners]
        if missing and not register:  # pragma: no cover - linked people exist
            raise DomainError(f"unknown person {missing[0]}")
        if missing:
            report.registered.extend(missing)
            now = _now_us()
            insert_rows(
                conn,
                "people",
                ("handle", "owner", "user_id", "created_at"),
                [(h, f"person:{h}", None, now) for h in missing],
            )
            owners.update({h: f"person:{h}" for h in missing})
        found = {
            (owner, asset): account_id
            for account_id, owner, asset in fetch_all(
                conn,
                f"SELECT id, owner, asset FROM accounts WHERE owner {one_of(conn)} "
                "AND name = 'main' AND asset IN ('CO2E_MG', 'POINT')",
                (as_list(conn, sorted(set(owners.values()))),),
            )
        }
        wanted = [(owners[h], asset) for h in handles for asset in ("CO2E_MG", "POINT")]
        new = [pair for pair in wanted if pair not in found]
        if new:
            ids = self.ledger.open_accounts_in(
                conn, [(owner, asset, "main", AccountFlags.NONE) for owner, asset in new]
            )
            found.update(zip(new, ids, strict=True))
        return {h: (found[(owners[h], "CO2E_MG")], found[(owners[h], "POINT")]) for h in handles}

    def credited_records(self, report: IngestReport) -> Iterator[Record]:
        """The run's credited events as (person, behaviour, quantity, unit), streamed back from
        the database by the run's ledger batches."""
        yield from report.unbatched
        ids = report.batch_ids
        with self.engine.connect() as conn:
            for start in range(0, len(ids), 500):
                rows = conn.execute(
                    sa.select(
                        personal_events.c.person,
                        personal_events.c.behaviour,
                        personal_events.c.quantity,
                        personal_events.c.unit,
                        personal_events.c.evidence,
                        personal_events.c.local_day,
                    ).where(
                        personal_events.c.batch_id.in_(ids[start : start + 500]),
                        personal_events.c.status == CREDITED,
                    )
                )
                for row in rows:
                    yield (
                        row.person,
                        row.behaviour,
                        D(row.quantity),
                        row.unit,
                        row.evidence,
                        row.local_day,
                    )

    # -- reading ----------------------------------------------------------------------------------

    def reconcile(self, target: str, person: str | None = None) -> dict[str, Any]:
        """Re-quantify stored records under `target` (ID@VERSION), per person."""
        current_registry(self.engine).get(target)  # unknown: refused before reading anything
        query = sa.select(
            personal_events.c.person,
            personal_events.c.behaviour,
            personal_events.c.quantity,
            personal_events.c.unit,
            personal_events.c.methodology,
            personal_events.c.reduction_mg,
            personal_events.c.evidence,
            personal_events.c.local_day,
        ).where(personal_events.c.status == CREDITED)
        if person is not None:
            query = query.where(personal_events.c.person == person)
        recorded: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        records = []
        with self.engine.connect() as conn:
            for row in conn.execute(
                query.order_by(personal_events.c.person, personal_events.c.occurred_at)
            ):
                recorded[row.person][row.methodology] += row.reduction_mg
                records.append(
                    (
                        row.person,
                        row.behaviour,
                        D(row.quantity),
                        row.unit,
                        row.evidence,
                        row.local_day,
                    )
                )
        under = reconcile_events(records, source="", targets=[target])[target]
        people_doc: dict[str, Any] = {}
        for name in sorted(recorded):
            entry: dict[str, Any] = {
                "recorded": {
                    ref: mg_to_grams_text(mg) for ref, mg in sorted(recorded[name].items())
                },
            }
            entry.update(under.get(name, {"grams": "0.00"}))
            people_doc[name] = entry
        return {"to": target, "people": people_doc, "reconciled_under": {target: under}}


def _quantify(
    methodology: Methodology,
    event: Event,
    cache: dict[tuple[str, str, str, str, str], int | qerrors.QuantifyError],
) -> int:
    # The version is part of the key: one partner batch may span two versions' days.
    key = (methodology.ref, event.behaviour, event.quantity_text, event.unit, event.evidence)
    found = cache.get(key)
    if found is None:
        try:
            found = methodology.quantify(
                event.behaviour, event.quantity, event.unit, event.evidence
            )
        except qerrors.QuantifyError as refusal:
            found = refusal
        cache[key] = found
    if isinstance(found, qerrors.QuantifyError):
        raise found
    return found


def _tally(report: IngestReport, accepted: list[tuple[Event, int, int]], batch: int | None) -> None:
    """Count a stored chunk into the run's report (after its transaction committed)."""
    if batch is not None:
        report.batch_ids.append(batch)
    for event, mg, status in accepted:
        if status == CREDITED:
            report.accepted += 1
            report.grams_mg[event.person] += mg
            if batch is None:
                report.unbatched.append(
                    (
                        event.person,
                        event.behaviour,
                        event.quantity,
                        event.unit,
                        event.evidence,
                        event.local_day,
                    )
                )


def _screen(
    raw: Any, line: int, zone: ZoneInfo, seen: dict[tuple[str, str], str], report: IngestReport
) -> Event | None:
    """Parse one event; a repeat of an identity seen earlier in the batch is a duplicate (the
    same content) or CONFLICTING_EVENT (other content), a bad event is refused with its code.
    Returns the event to go on with, if any."""
    event, refusal = parse_event(raw, line, zone)
    identity = _identity(raw)
    if identity is not None and identity in seen:
        if seen[identity] != _fingerprint(raw):
            report.reject(
                line,
                identity[1],
                "CONFLICTING_EVENT",
                "the batch sends this event id twice with other content",
            )
            return None
        report.duplicates += 1
        report.result({"event_id": identity[1], "status": "duplicate"})
        return None
    if identity is not None:
        seen[identity] = _fingerprint(raw)
    if refusal is not None:
        report.reject(line, *refusal)
        return None
    return event


def _numbered(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    for number, text in enumerate(lines, start=1):
        if text.strip():
            yield number, text


def _chunks(items: Iterator[tuple[int, str]], size: int) -> Iterator[list[tuple[int, str]]]:
    chunk: list[tuple[int, str]] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _identity(raw: Any) -> tuple[str, str] | None:
    if (
        isinstance(raw, dict)
        and isinstance(raw.get("platform"), str)
        and isinstance(raw.get("event_id"), str)
    ):
        return (raw["platform"], raw["event_id"])
    return None


def _fingerprint(raw: dict[str, Any]) -> str:
    """What an event says, to tell a harmless re-send from a conflicting one in a batch."""
    return json.dumps(
        [raw.get(name) for name in (*FIELDS, "evidence")], ensure_ascii=False, default=str
    )


Content = tuple[str, str, Decimal, str, str, int]


def _content(event: Event) -> Content:
    """What a stored event said (quantities compare as numbers: "2.5" is "2.50")."""
    return (
        event.person,
        event.behaviour,
        event.quantity,
        event.unit,
        event.evidence,
        event.occurred_at,
    )


def _stored_identities(
    conn: sa.Connection, keys: list[tuple[str, str]]
) -> dict[tuple[str, str], Content]:
    """The chunk's identities already stored, each with what it said then."""
    found: dict[tuple[str, str], Content] = {}
    by_platform: dict[str, list[str]] = defaultdict(list)
    for platform, event_id in keys:
        by_platform[platform].append(event_id)
    sql = (
        "SELECT event_id, person, behaviour, quantity, unit, evidence, occurred_at "
        f"FROM personal_events WHERE platform = {marker(conn)} AND event_id {one_of(conn)}"
    )
    for platform, ids in by_platform.items():
        for event_id, person, behaviour, quantity, unit, evidence, at in fetch_all(
            conn, sql, (platform, as_list(conn, ids))
        ):
            found[(platform, event_id)] = (person, behaviour, D(quantity), unit, evidence, at)
    return found


@dataclass(slots=True)
class _Rules:
    """The gate's rules for one chunk's events that need no quantity: the identity, the
    signer and consent, the version's in-force dates and the claim window."""

    methodology: Methodology
    stored: dict[tuple[str, str], Content]
    platform: str | None
    linked: set[str]
    earliest: str | None  # the claim window's first day; None: no window
    scope: PartnerScope | None = None  # a signed partner's scope; None: a trusted caller
    in_force: dict[str, bool] = field(default_factory=dict)

    def refusal(self, event: Event) -> tuple[str, str] | None:  # noqa: PLR0911 - one per rule
        """(code, message) of the first rule the event breaks, or None."""
        methodology, platform = self.methodology, self.platform
        if event.key in self.stored:  # a stored id with the same content is a duplicate
            return (
                "CONFLICTING_EVENT",
                (
                    f"{event.platform}:{event.event_id} was received before with other content; "
                    "send a reversal and a new event id to correct it"
                ),
            )
        if platform is not None and event.platform != platform:
            return ("WRONG_PLATFORM", f"signed by {platform} but names platform {event.platform}")
        if platform is not None and event.person not in self.linked:
            return ("NOT_LINKED", f"the person has not linked {platform}")
        if self.scope is not None:
            beyond = _beyond_scope(self.scope, methodology, event)
            if beyond is not None:
                return beyond
        day = event.local_day
        if day not in self.in_force:
            self.in_force[day] = methodology.in_force_on(date.fromisoformat(day))
        if not self.in_force[day]:
            return (
                "NOT_IN_FORCE",
                f"{day} is outside {methodology.ref}'s validity (from "
                f"{methodology.effective_from}"
                + (f" to {methodology.effective_until})" if methodology.effective_until else ")"),
            )
        if self.earliest is not None and day < self.earliest:
            return (
                "OUTSIDE_CLAIM_WINDOW",
                (
                    f"{day} is before {self.earliest}: {methodology.ref} takes claims for "
                    f"{methodology.claim_window_days} days"
                ),
            )
        return None


def _earliest_claimable(methodology: Methodology, now_us: int | None) -> str | None:
    """The first local day a partner may still claim (ISO text), or None: no window."""
    if now_us is None:
        return None
    today = datetime.fromtimestamp(now_us / 1_000_000, ZoneInfo(methodology.timezone)).date()
    return (today - timedelta(days=methodology.claim_window_days)).isoformat()


@dataclass(frozen=True, slots=True)
class PartnerScope:
    """What the operator lets one partner platform claim (`carbonbook partner add`)."""

    code: str
    methodology: str | None  # ID@VERSION; None: not set, every event is refused
    behaviours: frozenset[str]
    evidence: frozenset[str]


def _scope_refusal(scope: PartnerScope, requested: str | None) -> tuple[str, str] | None:
    """Why the partner may claim nothing under this request (code, message), or None."""
    if scope.methodology is None:
        return (
            "METHODOLOGY_NOT_IN_SCOPE",
            f"the operator has set no methodology for {scope.code}",
        )
    if requested is not None and requested != scope.methodology:
        return (
            "METHODOLOGY_NOT_IN_SCOPE",
            f"{scope.code} claims under {scope.methodology} only, not {requested}",
        )
    return None


def _beyond_scope(
    scope: PartnerScope, methodology: Methodology, event: Event
) -> tuple[str, str] | None:
    """A behaviour or evidence tier the version knows but the partner may not claim (what
    the version does not know at all is left to quantify: UNKNOWN_BEHAVIOUR, BAD_EVIDENCE)."""
    if event.behaviour not in scope.behaviours and event.behaviour in methodology.behaviours:
        allowed = ", ".join(sorted(scope.behaviours))
        return (
            "BEHAVIOUR_NOT_IN_SCOPE",
            f"{scope.code} may claim {allowed}, not {event.behaviour}",
        )
    if event.evidence not in scope.evidence and event.evidence in methodology.evidence:
        allowed = ", ".join(sorted(scope.evidence))
        return (
            "EVIDENCE_NOT_IN_SCOPE",
            f"{scope.code} sends evidence {allowed}, not {event.evidence}",
        )
    return None


def current_registry(engine: sa.Engine) -> Registry:
    """The methodology versions in use: shipped plus every version published in this
    database (read on each call, so the CLI and every API process see a publication)."""
    load_published(engine)
    return default_registry()


def _linked(conn: sa.Connection, platform: str, persons: set[str]) -> set[str]:
    rows = fetch_all(
        conn,
        f"SELECT person FROM platform_links WHERE platform = {marker(conn)} "
        f"AND revoked_at IS NULL AND person {one_of(conn)}",
        (platform, as_list(conn, sorted(persons))),
    )
    return {r[0] for r in rows}


def _load_days(
    conn: sa.Connection, ref: str, keys: set[tuple[str, str]]
) -> dict[tuple[str, str], dict[str, Any]]:
    """The chunk's (person, day) totals so far: only the days the chunk touches, looked up
    by the table's key (a person's other days would grow the read as the history grows)."""
    days: dict[tuple[str, str], dict[str, Any]] = {
        key: {
            "mg": 0,
            "points": 0,
            "units": {},
            "stored": False,
            "other_share": ZERO,
            "other_points": 0,
        }
        for key in keys
    }
    ordered = sorted(keys)
    # Every methodology's row of the person-day: points are per person-day across
    # methodologies, so the other rows' grams and points count in this row's top-up.
    if is_postgres(conn):
        rows = fetch_all(
            conn,
            "SELECT d.person, d.day, d.reduction_mg, d.points, d.units, d.methodology "
            "FROM unnest(%s::text[], %s::text[]) AS k(person, day) JOIN personal_days AS d "
            "ON d.person = k.person AND d.day = k.day",
            ([p for p, _ in ordered], [d for _, d in ordered]),
        )
    else:
        rows = fetch_all(
            conn,
            "SELECT d.person, d.day, d.reduction_mg, d.points, d.units, d.methodology "
            "FROM json_each(?) AS k JOIN personal_days AS d "
            "ON d.person = json_extract(k.value, '$[0]') AND d.day = json_extract(k.value, '$[1]')",
            (json.dumps(ordered, ensure_ascii=False),),
        )
    others = []
    for person, day, mg, points, units, methodology in rows:
        if methodology != ref:
            others.append((person, day, mg, points, methodology))
            continue
        days[(person, day)].update(
            mg=mg,
            points=points,
            units={k: D(v) for k, v in json.loads(units).items()},
            stored=True,
        )
    for person, day, mg, points, methodology in others:
        state = days[(person, day)]
        state["other_share"] += _point_share(methodology, mg, ref)
        state["other_points"] += points
    return days


def _point_share(ref: str, mg: int, fallback: str) -> Decimal:
    """A methodology's grams of a day in points, unrounded (each version's own rate)."""
    versions = all_methodologies()
    chosen = versions.get(ref) or versions.get(fallback)
    grams_per_point = chosen.grams_per_point if chosen is not None else Decimal(100)
    return Decimal(mg) / (grams_per_point * MG_PER_G)


def day_points(methodology: Methodology, day: dict[str, Any]) -> int:
    """The person-day's points in all (rounded half-up once, across methodologies), less
    nothing: the caller subtracts what was paid."""
    if not day["other_share"]:
        return methodology.points_for_day(day["mg"])
    return to_units_half_up(
        _point_share(methodology.ref, day["mg"], methodology.ref) + day["other_share"], Decimal(1)
    )


def _save_days(conn: sa.Connection, ref: str, days: dict[tuple[str, str], dict[str, Any]]) -> None:
    """Every touched day in two statements: one bulk update, one bulk insert."""
    updates: list[tuple[str, str, int, int, str]] = []
    inserts: list[tuple[str, str, str, int, int, str]] = []
    for (person, day), state in days.items():
        used = state["units"]
        units = _units_text(
            tuple((k, str(used[k])) for k in (sorted(used) if len(used) > 1 else used))
        )
        if state["stored"]:
            updates.append((person, day, state["mg"], state["points"], units))
        elif state["mg"] or state["units"]:
            inserts.append((person, day, ref, state["mg"], state["points"], units))
    if updates and is_postgres(conn):
        # One statement for the chunk: a pipelined UPDATE per row costs a round trip each.
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        cursor.execute(
            "UPDATE personal_days AS d SET reduction_mg = v.mg, points = v.points, "
            "units = v.units FROM unnest(%s::text[], %s::text[], %s::bigint[], %s::bigint[], "
            "%s::text[]) AS v(person, day, mg, points, units) "
            "WHERE d.person = v.person AND d.day = v.day AND d.methodology = %s",
            (*(list(column) for column in zip(*updates, strict=True)), ref),
        )
    elif updates:
        conn.connection.driver_connection.executemany(  # type: ignore[union-attr]
            "UPDATE personal_days SET reduction_mg = ?, points = ?, units = ? "
            "WHERE person = ? AND day = ? AND methodology = ?",
            [(mg, points, units, person, day, ref) for person, day, mg, points, units in updates],
        )
    insert_rows(conn, "personal_days", DAY_COLUMNS, inserts)


@functools.lru_cache(maxsize=4096)
def _units_text(units: tuple[tuple[str, str], ...]) -> str:
    """A day's units so far as stored (JSON, behaviours in order); the same few texts recur
    day after day (one 2.5 km ride, one order), so each is encoded once."""
    return json.dumps(dict(units))


EVENT_COLUMNS = (
    "platform",
    "event_id",
    "person",
    "behaviour",
    "quantity",
    "unit",
    "evidence",
    "occurred_at",
    "local_day",
    "methodology",
    "reduction_mg",
    "status",
    "batch_id",
    "ingested_at",
)
DAY_COLUMNS = ("person", "day", "methodology", "reduction_mg", "points", "units")


def _insert_events(conn: sa.Connection, rows: list[tuple[Any, ...]]) -> None:
    """The chunk's event rows in one go (COPY on PostgreSQL)."""
    insert_rows(conn, "personal_events", EVENT_COLUMNS, rows)


def _check_cap(
    methodology: Methodology, days: dict[tuple[str, str], dict[str, Any]], event: Event
) -> None:
    behaviour = methodology.behaviour(event.behaviour)
    used = days[(event.person, event.local_day)]["units"].get(event.behaviour, Decimal(0))
    if used + event.quantity > behaviour.daily_cap_units:
        raise qerrors.DailyCapError(
            f"{event.behaviour}: {used} + {event.quantity} {event.unit} passes the daily cap of "
            f"{behaviour.daily_cap_units}",
            f"{event.behaviour}：当日已计 {used}，再加 {event.quantity} "
            f"超过每日上限 {behaviour.daily_cap_units}",
        )


def _count_units(days: dict[tuple[str, str], dict[str, Any]], event: Event) -> None:
    units = days[(event.person, event.local_day)]["units"]
    units[event.behaviour] = units.get(event.behaviour, Decimal(0)) + event.quantity


def _recent_events(
    conn: sa.Connection, events: list[Event], window_minutes: int
) -> dict[tuple[str, str], list[tuple[int, str]]]:
    """Credited events near the chunk's events in time, per (person, behaviour).

    One range per (person, behaviour) the chunk names, from its earliest event less the window
    to its latest plus the window, looked up on the (person, behaviour, occurred_at) index: a
    chunk spread over a month would otherwise read each person's whole month, a read that grows
    with the history."""
    found: dict[tuple[str, str], list[tuple[int, str]]] = defaultdict(list)
    if window_minutes <= 0 or not events:
        return found
    window = window_minutes * 60_000_000
    ranges: dict[tuple[str, str], tuple[int, int]] = {}
    for e in events:
        key = (e.person, e.behaviour)
        low, high = ranges.get(key, (e.occurred_at, e.occurred_at))
        ranges[key] = (min(low, e.occurred_at), max(high, e.occurred_at))
    keys = sorted(ranges)
    if is_postgres(conn):
        rows = fetch_all(
            conn,
            "SELECT e.person, e.behaviour, e.occurred_at, e.platform "
            "FROM unnest(%s::text[], %s::text[], %s::bigint[], %s::bigint[]) "
            "AS k(person, behaviour, low, high) JOIN personal_events AS e "
            "ON e.person = k.person AND e.behaviour = k.behaviour "
            "AND e.occurred_at BETWEEN k.low AND k.high AND e.status = %s",
            (
                [p for p, _ in keys],
                [b for _, b in keys],
                [ranges[k][0] - window for k in keys],
                [ranges[k][1] + window for k in keys],
                CREDITED,
            ),
        )
    else:
        # CROSS JOIN keeps json_each as the outer loop, so each range is one index probe.
        rows = fetch_all(
            conn,
            "SELECT e.person, e.behaviour, e.occurred_at, e.platform "
            "FROM json_each(?) AS k CROSS JOIN personal_events AS e "
            "ON e.person = json_extract(k.value, '$[0]') "
            "AND e.behaviour = json_extract(k.value, '$[1]') "
            "AND e.occurred_at BETWEEN json_extract(k.value, '$[2]') "
            "AND json_extract(k.value, '$[3]') AND e.status = ?",
            (
                json.dumps(
                    [[p, b, ranges[p, b][0] - window, ranges[p, b][1] + window] for p, b in keys],
                    ensure_ascii=False,
                ),
                CREDITED,
            ),
        )
    for person, behaviour, at, platform in rows:
        found[(person, behaviour)].append((at, platform))
    return found


def _is_cross_platform_duplicate(
    event: Event, neighbours: dict[tuple[str, str], list[tuple[int, str]]], methodology: Methodology
) -> bool:
    """The same person and behaviour reported by another platform within the window."""
    near = neighbours.get((event.person, event.behaviour))
    if not near:  # most events: nothing of the person's behaviour nearby
        return False
    window = methodology.cross_platform_window_minutes * 60_000_000
    if window <= 0:
        return False
    return any(
        platform != event.platform and abs(at - event.occurred_at) <= window
        for at, platform in near
    )
