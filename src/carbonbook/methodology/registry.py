"""The methodology registry: versions loaded from cited data files, found by `ID@VERSION`
or by the date they are in force.

Files live in `data/methodologies/personal/ID@VERSION.toml`, shipped in the wheel as
`carbonbook/_data/methodologies/personal/`. Each file is validated on load, and every problem
of every file is reported at once (missing sources, factors not written as decimal strings,
duplicate behaviour codes, unknown keys, ...). The format is described in
`docs/methodologies.md`.
"""

from __future__ import annotations

import re
import tomllib
from datetime import date
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from carbonbook.methodology import errors
from carbonbook.methodology.model import (
    FACTOR_PLACES,
    Behaviour,
    DuplicateRule,
    EvidenceLevel,
    HouseholdBaselineRule,
    Limits,
    Methodology,
    PointsRule,
)
from carbonbook.numbers import D, NotADecimalError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from decimal import Decimal

PERSONAL = "personal"
_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.-]*$")
_CODE = re.compile(r"^[a-z][a-z0-9_]*$")

_TOP_KEYS = frozenset(
    {
        "id",
        "version",
        "title",
        "scope",
        "status",
        "source",
        "effective_from",
        "effective_from_source",
        "effective_until",
        "timezone",
        "notes",
        "points",
        "duplicates",
        "evidence",
        "behaviours",
        "claim_window_days",
    }
)
_BEHAVIOUR_KEYS = frozenset(
    {
        "code",
        "name",
        "name_zh",
        "unit",
        "factor_g_per_unit",
        "factor_status",
        "factor_source",
        "baseline",
        "limits",
        "evidence_factors",
        "baseline_rule",
    }
)
_LIMIT_KEYS = frozenset(
    {"max_per_event", "daily_cap_units", "min_per_event", "whole_units", "source"}
)
_POINTS_KEYS = frozenset({"grams_per_point", "rounding", "period", "source"})
_DUPLICATE_KEYS = frozenset({"rule", "window_minutes", "keep", "source"})
_EVIDENCE_KEYS = frozenset({"weight", "source"})
_BASELINE_RULE_KEYS = frozenset(
    {"kind", "trailing_days", "source", "city_kwh_per_day", "city_kwh_source"}
)
_DUPLICATE_RULE = "same_person_behaviour_other_platform_overlapping_window"
_NOT_PUBLISHED = "not published"
DEFAULT_CLAIM_WINDOW_DAYS = 30  # a carbonbook rule where a scheme publishes no claim window


# -- where the data lives -----------------------------------------------------------------------


def data_dir() -> Path:
    """Where methodology data lives: the installed package's copy, else the repository's.

    Tries `importlib.resources` `carbonbook/_data/methodologies` first (the wheel carries
    `data/methodologies` there), then `data/methodologies` of the source checkout.
    """
    try:
        packaged = resources.files("carbonbook") / "_data" / "methodologies"
        if packaged.is_dir() and (packaged / PERSONAL).is_dir():
            return Path(str(packaged))
    except (ModuleNotFoundError, FileNotFoundError):  # pragma: no cover - always importable
        pass
    return Path(__file__).resolve().parents[3] / "data" / "methodologies"


# -- reading one file ---------------------------------------------------------------------------


class _Reader:
    """Reads one methodology table, collecting every problem instead of stopping at the first."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.problems: list[str] = []

    def problem(self, at: str, message: str) -> None:
        self.problems.append(f"{self.where}: {at}: {message}")

    def table(self, data: dict[str, Any], key: str, at: str) -> dict[str, Any]:
        value = data.get(key)
        if value is None:
            self.problem(at, f"missing table {key!r}")
            return {}
        if not isinstance(value, dict):
            self.problem(at, f"{key!r} must be a table")
            return {}
        return value

    def keys(self, data: dict[str, Any], allowed: frozenset[str], at: str) -> None:
        unknown = sorted(set(data) - allowed)
        if unknown:
            self.problem(at, f"unknown keys {unknown} (allowed: {sorted(allowed)})")

    def text(self, data: dict[str, Any], key: str, at: str, *, required: bool = True) -> str:
        value = data.get(key)
        if value is None:
            if required:
                self.problem(at, f"missing {key!r}")
            return ""
        if not isinstance(value, str) or not value.strip():
            self.problem(at, f"{key!r} must be a non-empty string")
            return ""
        return value.strip()

    def source(self, data: dict[str, Any], at: str, key: str = "source") -> str:
        value = data.get(key)
        if not isinstance(value, str) or not value.strip():
            self.problem(at, f"missing source ({key!r}): every value must cite where it is from")
            return ""
        return value.strip()

    def decimal(
        self,
        data: dict[str, Any],
        key: str,
        at: str,
        *,
        required: bool = True,
        positive: bool = True,
        places: int | None = None,
    ) -> Decimal | None:
        value = data.get(key)
        if value is None:
            if required:
                self.problem(at, f"missing {key!r}")
            return None
        if not isinstance(value, str):
            self.problem(
                at,
                f"{key} = {value!r} must be a decimal written as a string "
                f'(e.g. {key} = "{value}"), never a TOML number',
            )
            return None
        try:
            number = D(value)
        except NotADecimalError:
            self.problem(at, f"{key} = {value!r} is not a decimal number")
            return None
        if positive and number <= 0:
            self.problem(at, f"{key} = {value!r} must be positive")
        exponent = number.as_tuple().exponent
        if places is not None and isinstance(exponent, int) and exponent < -places:
            self.problem(at, f"{key} = {value!r} has more than {places} decimals")
        return number

    def integer(self, data: dict[str, Any], key: str, at: str) -> int:
        value = data.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            self.problem(at, f"{key} = {value!r} must be a positive integer")
            return 0
        return value

    def day(self, data: dict[str, Any], key: str, at: str, *, required: bool = True) -> date | None:
        value = data.get(key)
        if value is None:
            if required:
                self.problem(at, f"missing {key!r}")
            return None
        if isinstance(value, date):  # TOML local date: effective_from = 2023-01-01
            return value
        if isinstance(value, str):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        self.problem(at, f"{key} = {value!r} must be a date (YYYY-MM-DD)")
        return None


def _limits(r: _Reader, behaviour: dict[str, Any], at: str) -> Limits:
    table = r.table(behaviour, "limits", at)
    if not table:
        return Limits(max_per_event=D(0), daily_cap_units=D(0), source="")
    at = f"{at}.limits"
    r.keys(table, _LIMIT_KEYS, at)
    max_per_event = r.decimal(table, "max_per_event", at)
    daily_cap = r.decimal(table, "daily_cap_units", at)
    min_per_event = r.decimal(table, "min_per_event", at, required=False, positive=False)
    whole = table.get("whole_units", False)
    if not isinstance(whole, bool):
        r.problem(at, f"whole_units = {whole!r} must be true or false")
        whole = False
    if min_per_event is not None and max_per_event is not None and min_per_event >= max_per_event:
        r.problem(at, f"min_per_event {min_per_event} must be below max_per_event {max_per_event}")
    return Limits(
        max_per_event=max_per_event or D(0),
        daily_cap_units=daily_cap or D(0),
        source=r.source(table, at),
        min_per_event=min_per_event or D(0),
        whole_units=whole,
    )


def _baseline_rule(r: _Reader, table: Any, at: str) -> HouseholdBaselineRule | None:
    if table is None:
        return None
    if not isinstance(table, dict):
        r.problem(at, "baseline_rule must be a table")
        return None
    r.keys(table, _BASELINE_RULE_KEYS, at)
    kind = r.text(table, "kind", at)
    if kind and kind != "city_average_or_own_trailing_average":
        r.problem(at, f"unknown baseline rule kind {kind!r}")
    city = r.decimal(table, "city_kwh_per_day", at, required=False)
    return HouseholdBaselineRule(
        trailing_days=r.integer(table, "trailing_days", at),
        source=r.source(table, at),
        kind=kind,
        city_kwh_per_day=city,
        city_source=r.source(table, at, "city_kwh_source") if city is not None else "",
    )


def _behaviour(r: _Reader, table: Any, index: int, levels: set[str]) -> Behaviour | None:
    at = f"behaviours[{index}]"
    if not isinstance(table, dict):
        r.problem(at, "each [[behaviours]] entry must be a table")
        return None
    code = r.text(table, "code", at)
    if code and not _CODE.match(code):
        r.problem(at, f"code {code!r} must be lower_snake_case")
    at = f"behaviours.{code or index}"
    r.keys(table, _BEHAVIOUR_KEYS, at)
    factor = r.decimal(table, "factor_g_per_unit", at, required=False, places=FACTOR_PLACES)
    status = r.text(table, "factor_status", at)
    if "factor_g_per_unit" not in table and status != _NOT_PUBLISHED:
        r.problem(at, f"missing 'factor_g_per_unit' (or factor_status = {_NOT_PUBLISHED!r})")
    if "factor_g_per_unit" in table and status == _NOT_PUBLISHED:
        r.problem(at, f"a factor is given but factor_status is {_NOT_PUBLISHED!r}")
    evidence_factors: dict[str, Decimal] = {}
    evidence_source = ""
    raw_evidence = table.get("evidence_factors")
    if raw_evidence is not None:
        if not isinstance(raw_evidence, dict):
            r.problem(at, "evidence_factors must be a table")
        else:
            evidence_source = r.source(raw_evidence, f"{at}.evidence_factors")
            for level in sorted(set(raw_evidence) - {"source"}):
                if level not in levels:
                    r.problem(at, f"evidence_factors names {level!r}, not an [evidence] level")
                value = r.decimal(
                    raw_evidence, level, f"{at}.evidence_factors", places=FACTOR_PLACES
                )
                if value is not None:
                    evidence_factors[level] = value
    return Behaviour(
        code=code,
        name=r.text(table, "name", at),
        name_zh=r.text(table, "name_zh", at),
        unit=r.text(table, "unit", at),
        factor_g_per_unit=factor,
        factor_status=status,
        factor_source=r.source(table, at, "factor_source"),
        baseline=r.text(table, "baseline", at),
        limits=_limits(r, table, at),
        evidence_factors=evidence_factors,
        evidence_factors_source=evidence_source,
        baseline_rule=_baseline_rule(r, table.get("baseline_rule"), f"{at}.baseline_rule"),
    )


def _evidence(r: _Reader, data: dict[str, Any]) -> dict[str, EvidenceLevel]:
    found: dict[str, EvidenceLevel] = {}
    for level, table in r.table(data, "evidence", "evidence").items():
        at = f"evidence.{level}"
        if not isinstance(table, dict):
            r.problem(at, "each evidence level must be a table with weight and source")
            continue
        r.keys(table, _EVIDENCE_KEYS, at)
        weight = r.decimal(table, "weight", at)
        if weight is not None and weight > 1:
            r.problem(at, f"weight {weight} must be at most 1 (evidence never adds grams)")
        found[level] = EvidenceLevel(level, weight or D(0), r.source(table, at))
    if not found:
        r.problem("evidence", "at least one evidence level is needed")
    return found


def _points(r: _Reader, data: dict[str, Any]) -> PointsRule:
    table = r.table(data, "points", "points")
    r.keys(table, _POINTS_KEYS, "points")
    rounding = table.get("rounding", "half_up")
    if rounding != "half_up":
        r.problem("points", f"rounding {rounding!r} is not supported (only 'half_up')")
    period = table.get("period", "day")
    if period != "day":
        r.problem("points", f"period {period!r} is not supported (only 'day')")
    grams_per_point = r.decimal(table, "grams_per_point", "points") if table else None
    return PointsRule(
        grams_per_point=grams_per_point or D(1),
        source=r.source(table, "points") if table else "",
        rounding=str(rounding),
        period=str(period),
    )


def _duplicates(r: _Reader, data: dict[str, Any]) -> DuplicateRule:
    table = r.table(data, "duplicates", "duplicates")
    r.keys(table, _DUPLICATE_KEYS, "duplicates")
    rule = table.get("rule", _DUPLICATE_RULE)
    if rule != _DUPLICATE_RULE:
        r.problem("duplicates", f"rule {rule!r} is not supported (only {_DUPLICATE_RULE!r})")
    keep = table.get("keep", "first")
    if keep != "first":
        r.problem("duplicates", f"keep {keep!r} is not supported (only 'first')")
    return DuplicateRule(
        window_minutes=r.integer(table, "window_minutes", "duplicates") if table else 0,
        source=r.source(table, "duplicates") if table else "",
        keep=str(keep),
    )


def _notes(r: _Reader, data: dict[str, Any]) -> tuple[str, ...]:
    notes = data.get("notes", [])
    if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
        r.problem("notes", "notes must be a list of strings")
        return ()
    return tuple(notes)


def _header(r: _Reader, data: dict[str, Any]) -> tuple[str, str, str]:
    ident, version = r.text(data, "id", "id"), r.text(data, "version", "version")
    if ident and not _ID.match(ident):
        r.problem("id", f"id {ident!r} must be lower-case letters, digits and '-'")
    if version and not _VERSION.match(version):
        r.problem("version", f"version {version!r} must be letters, digits, '.' and '-'")
    timezone = r.text(data, "timezone", "timezone")
    if timezone:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            r.problem("timezone", f"unknown time zone {timezone!r}")
    scope = r.text(data, "scope", "scope")
    if scope and scope != PERSONAL:
        r.problem("scope", f"scope {scope!r}: this registry holds personal methodologies")
    return ident, version, timezone


def parse(data: dict[str, Any], where: str) -> Methodology:
    """Build one methodology version from its TOML table.

    Args:
        data: the parsed TOML document.
        where: the file name, used in messages.

    Raises:
        InvalidMethodologyError: listing every problem found (`details["problems"]`).
    """
    r = _Reader(where)
    r.keys(data, _TOP_KEYS, "file")
    ident, version, timezone = _header(r, data)
    evidence = _evidence(r, data)
    raw_behaviours = data.get("behaviours")
    if not isinstance(raw_behaviours, list) or not raw_behaviours:
        r.problem("behaviours", "at least one [[behaviours]] entry is needed")
        raw_behaviours = []
    behaviours: dict[str, Behaviour] = {}
    for index, table in enumerate(raw_behaviours):
        behaviour = _behaviour(r, table, index, set(evidence))
        if behaviour is None or not behaviour.code:
            continue
        if behaviour.code in behaviours:
            r.problem(f"behaviours.{behaviour.code}", "duplicate behaviour code")
            continue
        behaviours[behaviour.code] = behaviour
    effective_from = r.day(data, "effective_from", "effective_from")
    effective_until = r.day(data, "effective_until", "effective_until", required=False)
    if effective_from and effective_until and effective_until < effective_from:
        r.problem("effective_until", f"{effective_until} is before effective_from")
    methodology = Methodology(
        id=ident,
        version=version,
        title=r.text(data, "title", "title"),
        scope=PERSONAL,
        status=r.text(data, "status", "status"),
        source=r.source(data, "file"),
        effective_from=effective_from or date.min,
        effective_from_source=r.source(data, "effective_from", "effective_from_source"),
        timezone=timezone,
        behaviours=behaviours,
        evidence=evidence,
        points=_points(r, data),
        duplicates=_duplicates(r, data),
        effective_until=effective_until,
        notes=_notes(r, data),
        claim_window_days=(
            r.integer(data, "claim_window_days", "claim_window_days")
            if "claim_window_days" in data
            else DEFAULT_CLAIM_WINDOW_DAYS
        ),
    )
    if r.problems:
        raise _invalid(r.problems)
    return methodology


def _invalid(problems: list[str]) -> errors.InvalidMethodologyError:
    listed = "; ".join(problems)
    return errors.InvalidMethodologyError(
        f"invalid methodology data: {listed}",
        f"方法学数据无效：{listed}",
        problems=problems,
    )


def load_file(path: Path) -> Methodology:
    """Load and validate one `ID@VERSION.toml` file (the name must match its content).

    Raises:
        InvalidMethodologyError: the file is not TOML, breaks the format, or is misnamed.
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise _invalid([f"{path.name}: not valid TOML ({exc})"]) from None
    methodology = parse(data, path.name)
    if methodology.ref != path.stem:
        raise _invalid(
            [f"{path.name}: declares {methodology.ref}; the file name must be ID@VERSION.toml"]
        )
    return methodology


# -- the registry -------------------------------------------------------------------------------


class Registry:
    """Immutable methodology versions, found by `ID@VERSION` or by the date in force."""

    def __init__(self, methodologies: Iterable[Methodology]) -> None:
        """Index the versions.

        Raises:
            InvalidMethodologyError: two versions share a ref, or two versions of one id
                take effect on the same day (which would be in force is ambiguous).
        """
        by_ref: dict[str, Methodology] = {}
        problems: list[str] = []
        for methodology in methodologies:
            if methodology.ref in by_ref:
                problems.append(f"{methodology.ref}: defined twice")
                continue
            by_ref[methodology.ref] = methodology
        self._by_ref = dict(sorted(by_ref.items()))
        self._versions: dict[str, tuple[Methodology, ...]] = {}
        for ident in sorted({m.id for m in by_ref.values()}):
            versions = sorted(
                (m for m in by_ref.values() if m.id == ident), key=lambda m: m.effective_from
            )
            starts = [m.effective_from for m in versions]
            for day in sorted({d for d in starts if starts.count(d) > 1}):
                refs = [m.ref for m in versions if m.effective_from == day]
                problems.append(f"{', '.join(refs)}: take effect on the same day {day}")
            self._versions[ident] = tuple(versions)
        if problems:
            raise _invalid(problems)

    @classmethod
    def from_directory(cls, directory: Path) -> Registry:
        """Load every `*.toml` in `directory`, reporting the problems of all files at once."""
        loaded: list[Methodology] = []
        problems: list[str] = []
        for path in sorted(directory.glob("*.toml")):
            try:
                loaded.append(load_file(path))
            except errors.InvalidMethodologyError as exc:
                problems.extend(_problems(exc))
        if problems:
            raise _invalid(problems)
        return cls(loaded)

    def __iter__(self) -> Iterator[Methodology]:
        return iter(self._by_ref.values())

    def __len__(self) -> int:
        return len(self._by_ref)

    def __contains__(self, ref: object) -> bool:
        return ref in self._by_ref

    @property
    def refs(self) -> tuple[str, ...]:
        """Every `ID@VERSION`, sorted."""
        return tuple(self._by_ref)

    def get(self, ref: str) -> Methodology:
        """The version `ID@VERSION`.

        Raises:
            UnknownMethodologyError: naming the known versions.
        """
        found = self._by_ref.get(ref)
        if found is None:
            known = ", ".join(self._by_ref)
            raise errors.UnknownMethodologyError(
                f"unknown methodology {ref!r}; known: {known}",
                f"未知方法学 {ref!r}；已有：{known}",
                methodology=ref,
            )
        return found

    def versions(self, ident: str) -> tuple[Methodology, ...]:
        """Every version of `ident`, oldest effective date first (empty if unknown)."""
        return self._versions.get(ident, ())

    def in_force(self, ident: str, on: date) -> Methodology:
        """The version of `ident` in force on `on`.

        The latest version whose `effective_from` is on or before `on` (a later version
        supersedes an earlier one), provided its own `effective_until` has not passed.

        Raises:
            UnknownMethodologyError: no version of `ident` is in force on that day.
        """
        started = [m for m in self.versions(ident) if m.effective_from <= on]
        if started and started[-1].in_force_on(on):
            return started[-1]
        listed = ", ".join(
            f"{m.ref} from {m.effective_from}"
            + (f" until {m.effective_until}" if m.effective_until else "")
            for m in self.versions(ident)
        )
        raise errors.UnknownMethodologyError(
            f"no version of {ident!r} is in force on {on.isoformat()} (versions: {listed or '-'})",
            f"{on.isoformat()} 没有生效的 {ident!r} 版本（版本：{listed or '-'}）",
            methodology=ident,
            day=on.isoformat(),
        )

    def resolve(self, name: str, on: date | None = None) -> Methodology:
        """`ID@VERSION` as named, or a bare `ID` as the version in force on `on`.

        Raises:
            UnknownMethodologyError: unknown, or a bare id without a date.
        """
        if "@" in name or on is None:
            return self.get(name)
        return self.in_force(name, on)


def _problems(exc: errors.InvalidMethodologyError) -> list[str]:
    listed = exc.details.get("problems")
    if isinstance(listed, list):
        return [str(p) for p in listed]
    return [exc.message]  # pragma: no cover - every raise here lists its problems


@cache
def shipped_registry() -> Registry:
    """The personal methodology versions shipped with carbonbook (loaded once)."""
    return Registry.from_directory(data_dir() / PERSONAL)


# Versions a regulator published after release (kept in the database, added at start-up and
# on publication); the registry in use is the shipped one plus these.
_published: dict[str, Methodology] = {}
_current: list[Registry] = []


def default_registry() -> Registry:
    """The versions in use: shipped, plus those published through the API."""
    if not _current:
        _current.append(Registry([*shipped_registry(), *_published.values()]))
    return _current[0]


def forget_published() -> None:
    """Back to the shipped versions only (for tests, which share one process)."""
    _published.clear()
    _current.clear()


def add_published(methodologies: Iterable[Methodology]) -> Registry:
    """Add published versions to the registry in use; a version already known (shipped or
    published) is refused, as is one taking effect on the same day as another version of its
    id. Raises InvalidMethodologyError and changes nothing then."""
    candidate = dict(_published)
    for methodology in methodologies:
        candidate[methodology.ref] = methodology
    registry = Registry([*shipped_registry(), *candidate.values()])
    _published.clear()
    _published.update(candidate)
    _current[:] = [registry]
    return registry


def get(ref: str) -> Methodology:
    """The shipped methodology `ID@VERSION`, or UnknownMethodologyError naming the known ones."""
    return default_registry().get(ref)


def in_force(ident: str, on: date) -> Methodology:
    """The shipped version of `ident` in force on `on` (see `Registry.in_force`)."""
    return default_registry().in_force(ident, on)


def all_methodologies() -> dict[str, Methodology]:
    """Every personal methodology version in use, by `ID@VERSION` (a fresh dict)."""
    return {m.ref: m for m in default_registry()}
