"""The registry's rules as data: unit types, schemes, penalty rules, compliance periods.

Pure: `load_rules()` reads `data/registry/registry.toml` (shipped in the wheel as
`carbonbook/_data/registry/`), validates every entry and names the first problem. The
arithmetic of compliance (offset room, penalty exposure) lives here too, on integers and
Decimals built from strings, so it can be tested without a database.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn

from carbonbook.registry.errors import RegistryRulesError, UnknownUnitError

UNIT_KINDS = ("allowance", "offset")
PENALTY_KINDS = ("price_multiple", "fixed_fine")
PRICE_BASES = ("previous_month_average", "market_average", "six_month_average")
_ASSET = re.compile(r"^(?P<type>[A-Z][A-Z0-9]*(?:-[A-Z]{2})?)-(?P<vintage>(19|20)\d\d)$")


@dataclass(frozen=True, slots=True)
class UnitType:
    code: str  # CEA, BEA, CCER, PCER-BJ
    kind: str  # allowance | offset
    name: str
    name_zh: str
    serial_prefix: str
    source: str
    methodologies: tuple[str, ...] = ()  # personal methodologies a PCER type aggregates
    first_vintage: int | None = None  # the first year the scheme covers (a PCER type's start)
    first_vintage_source: str = ""


@dataclass(frozen=True, slots=True)
class PenaltyRule:
    id: str
    kind: str  # price_multiple | fixed_fine
    name: str
    source: str
    multiple_min: Decimal = Decimal(0)
    multiple_max: Decimal = Decimal(0)
    price_basis: str = ""
    fine_min_fen: int = 0
    fine_max_fen: int = 0
    deduct_next_year: bool = False

    def exposure(self, shortfall_t: int, price_fen: int | None) -> tuple[int, int] | None:
        """The penalty range in fen for `shortfall_t` missing tonnes, or None when the rule
        needs a price and there is none. Nothing is owed without a shortfall."""
        if shortfall_t <= 0:
            return (0, 0)
        if self.kind == "fixed_fine":
            return (self.fine_min_fen, self.fine_max_fen)
        if price_fen is None:
            return None
        base = Decimal(shortfall_t) * Decimal(price_fen)
        return (_fen(base * self.multiple_min), _fen(base * self.multiple_max))


@dataclass(frozen=True, slots=True)
class Scheme:
    id: str
    name: str
    name_zh: str
    allowance_types: tuple[str, ...]
    offset_types: tuple[str, ...]
    offset_cap: Decimal  # share of the obligation that offsets may cover
    penalty_rule: str
    source: str
    # Which emissions a locked report's figure counts: "direct" (the national ETS: direct CO2
    # only) or "total" (the GB/T total, with net purchased electricity and heat, as pilots do).
    boundary: str = "direct"
    # The least share of offsets that must come from local projects, and which unit types
    # count as local (Beijing: 50 %, its own PCER); None where the scheme has no such rule.
    local_offset_min_share: Decimal | None = None
    local_offset_types: tuple[str, ...] = ()

    def offset_limit(self, obligation_t: int) -> int:
        """Whole tonnes of offsets allowed against `obligation_t` (rounded down)."""
        return _floor(Decimal(obligation_t) * self.offset_cap)


@dataclass(frozen=True, slots=True)
class Period:
    id: str
    scheme: str
    emissions_year: int
    allowance_vintages: tuple[int, ...]
    deadline: date
    source: str


@dataclass(frozen=True, slots=True)
class HolderKind:
    """A kind of holder (the part of `kind:id` before the colon) and what it may hold: unit
    kinds (allowance, offset) or unit type codes (PCER-BJ)."""

    prefix: str
    name: str
    may_hold: tuple[str, ...]
    source: str

    def may_hold_unit(self, unit: UnitType) -> bool:
        return unit.kind in self.may_hold or unit.code in self.may_hold


@dataclass(frozen=True, slots=True)
class RegistryRules:
    second_approval_above_t: int
    unit_types: dict[str, UnitType]
    penalty_rules: dict[str, PenaltyRule]
    schemes: dict[str, Scheme]
    periods: dict[str, Period]
    holder_kinds: dict[str, HolderKind] = field(default_factory=dict)
    # (scheme, sector) -> the first emissions year the scheme covers the sector
    coverage: dict[tuple[str, str], int] = field(default_factory=dict)

    def covers(self, scheme: str, sector: str | None, year: int) -> bool:
        """Whether `scheme` covers `sector` for `year`'s emissions. A scheme with no coverage
        table, or a figure of no named sector, is not checked (hand-made rules, old reports)."""
        if sector is None or not any(s == scheme for s, _ in self.coverage):
            return True
        first = self.coverage.get((scheme, sector))
        return first is not None and year >= first

    def unit_type(self, code: str) -> UnitType:
        found = self.unit_types.get(code)
        if found is None:
            known = ", ".join(sorted(self.unit_types))
            raise UnknownUnitError(
                f"unknown unit type {code!r} (known: {known})",
                f"未知的单位类型 {code!r}（已知：{known}）",
            )
        return found

    def asset(self, unit_type: str, vintage: int) -> str:
        """The ledger asset of a unit type and vintage, e.g. CEA-2024."""
        self.unit_type(unit_type)
        if not 1990 <= vintage <= 2099:
            raise UnknownUnitError(
                f"vintage {vintage} is not a year between 1990 and 2099",
                f"年份 {vintage} 不在 1990 至 2099 之间",
            )
        return f"{unit_type}-{vintage}"

    def split_asset(self, asset: str) -> tuple[UnitType, int]:
        """(unit type, vintage) of a registry asset code; refuses anything else."""
        m = _ASSET.match(asset)
        if m is None or m["type"] not in self.unit_types:
            raise UnknownUnitError(
                f"{asset!r} is not a registry unit (TYPE-VINTAGE, e.g. CEA-2024)",
                f"{asset!r} 不是登记单位（类型-年份，例如 CEA-2024）",
            )
        return self.unit_types[m["type"]], int(m["vintage"])

    def period(self, period_id: str) -> Period:
        found = self.periods.get(period_id)
        if found is None:
            known = ", ".join(sorted(self.periods))
            raise UnknownUnitError(
                f"unknown compliance period {period_id!r} (known: {known})",
                f"未知的履约周期 {period_id!r}（已知：{known}）",
            )
        return found

    def period_for(self, scheme: str, emissions_year: int) -> Period | None:
        """The scheme's compliance period for a year's emissions, if one is defined."""
        for period in self.periods.values():
            if period.scheme == scheme and period.emissions_year == emissions_year:
                return period
        return None

    def scheme_of(self, period: Period) -> Scheme:
        return self.schemes[period.scheme]

    def role_in(self, period: Period, asset: str) -> str | None:
        """'allowance' or 'offset' when `asset` may be surrendered for `period`, else None."""
        unit, vintage = self.split_asset(asset)
        scheme = self.schemes[period.scheme]
        if unit.code in scheme.allowance_types and vintage in period.allowance_vintages:
            return "allowance"
        if unit.code in scheme.offset_types:
            return "offset"
        return None


def serial(prefix: str, vintage: int, issuance: int, start: int, end: int) -> str:
    """A block's serial range, e.g. CN-CEA-2024-000007-000000001-000100000 (UNDP-style:
    the issuance in the middle, the first and last unit at the end)."""
    return f"{prefix}-{vintage}-{issuance:06d}-{start:09d}-{end:09d}"


def _fen(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


def _floor(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


# -- loading ------------------------------------------------------------------------------------


def data_dir() -> Path:
    """The wheel's `carbonbook/_data/registry`, else the source checkout's `data/registry`."""
    try:
        packaged = resources.files("carbonbook") / "_data" / "registry"
        if packaged.is_dir():
            return Path(str(packaged))
    except (ModuleNotFoundError, FileNotFoundError):  # pragma: no cover - odd installs
        pass
    return Path(__file__).resolve().parents[3] / "data" / "registry"


@cache
def load_rules(path: Path | None = None) -> RegistryRules:
    """The registry rules from `path` (default: the shipped registry.toml), validated."""
    where = path or data_dir() / "registry.toml"
    try:
        raw = tomllib.loads(where.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RegistryRulesError(f"{where}: {exc}", f"{where}：{exc}") from exc
    return parse_rules(raw, str(where))


def parse_rules(raw: dict[str, Any], where: str = "registry.toml") -> RegistryRules:
    head = _table(raw, "registry", where)
    second = head.get("second_approval_above_t")
    if not isinstance(second, int) or isinstance(second, bool) or second < 1:
        _bad(where, "registry.second_approval_above_t", "a positive whole number of tonnes")
    _text(head, "source", f"{where}: registry")
    units = {u.code: u for u in (_unit(e, where) for e in _list(raw, "unit_type", where))}
    penalties = {p.id: p for p in (_penalty(e, where) for e in _list(raw, "penalty_rule", where))}
    schemes: dict[str, Scheme] = {}
    for entry in _list(raw, "scheme", where):
        scheme = _scheme(entry, where)
        for code in (*scheme.allowance_types, *scheme.offset_types):
            if code not in units:
                _bad(where, f"scheme {scheme.id}", f"a known unit type, not {code!r}")
        if scheme.penalty_rule not in penalties:
            _bad(where, f"scheme {scheme.id}.penalty_rule", "a penalty_rule id defined above")
        schemes[scheme.id] = scheme
    periods: dict[str, Period] = {}
    for entry in _list(raw, "period", where):
        period = _period(entry, where)
        if period.scheme not in schemes:
            _bad(where, f"period {period.id}.scheme", "a scheme id defined above")
        periods[period.id] = period
    kinds = _holder_kinds(raw, where, units)
    coverage: dict[tuple[str, str], int] = {}
    for entry in _list(raw, "coverage", where) if "coverage" in raw else []:
        at = f"{where}: coverage {entry.get('scheme', '?')}/{entry.get('sector', '?')}"
        scheme_id, sector = _text(entry, "scheme", at), _text(entry, "sector", at)
        _text(entry, "source", at)
        first = entry.get("from_year")
        if scheme_id not in schemes or not isinstance(first, int) or isinstance(first, bool):
            _bad(where, at, "a known scheme and a whole from_year")
        coverage[scheme_id, sector] = first
    return RegistryRules(second, units, penalties, schemes, periods, kinds, coverage)


def _holder_kinds(
    raw: dict[str, Any], where: str, units: dict[str, UnitType]
) -> dict[str, HolderKind]:
    kinds: dict[str, HolderKind] = {}
    for entry in _list(raw, "holder_kind", where) if "holder_kind" in raw else []:
        at = f"{where}: holder_kind {entry.get('prefix', '?')}"
        kind = HolderKind(
            _text(entry, "prefix", at),
            _text(entry, "name", at),
            _codes(entry, "may_hold", at),
            _text(entry, "source", at),
        )
        for code in kind.may_hold:
            if code not in UNIT_KINDS and code not in units:
                _bad(
                    where,
                    f"holder_kind {kind.prefix}.may_hold",
                    f"a unit kind or type, not {code!r}",
                )
        kinds[kind.prefix] = kind
    return kinds


def _unit(e: dict[str, Any], where: str) -> UnitType:
    at = f"{where}: unit_type {e.get('code', '?')}"
    code = _text(e, "code", at)
    if not re.fullmatch(r"[A-Z][A-Z0-9]*(-[A-Z]{2})?", code):
        _bad(where, f"unit_type {code}.code", "capitals and digits, optionally -XX (PCER-BJ)")
    kind = _text(e, "kind", at)
    if kind not in UNIT_KINDS:
        _bad(where, f"unit_type {code}.kind", " or ".join(UNIT_KINDS))
    return UnitType(
        code,
        kind,
        _text(e, "name", at),
        _text(e, "name_zh", at),
        _text(e, "serial_prefix", at),
        _text(e, "source", at),
        _codes(e, "methodologies", at) if "methodologies" in e else (),
        *_first_vintage(e, at),
    )


def _first_vintage(e: dict[str, Any], at: str) -> tuple[int | None, str]:
    if "first_vintage" not in e:
        return None, ""
    value = e["first_vintage"]
    if isinstance(value, bool) or not isinstance(value, int) or not 1990 <= value <= 2099:
        raise RegistryRulesError(
            f"{at}: first_vintage must be a year from 1990 to 2099",
            f"{at}：first_vintage 须为 1990 至 2099 之间的年份",
        )
    return value, _text(e, "first_vintage_source", at)


def _penalty(e: dict[str, Any], where: str) -> PenaltyRule:
    at = f"{where}: penalty_rule {e.get('id', '?')}"
    rule_id, kind = _text(e, "id", at), _text(e, "kind", at)
    common = {
        "id": rule_id,
        "kind": kind,
        "name": _text(e, "name", at),
        "source": _text(e, "source", at),
        "deduct_next_year": bool(e.get("deduct_next_year", False)),
    }
    if kind not in PENALTY_KINDS:
        _bad(where, f"penalty_rule {rule_id}.kind", " or ".join(PENALTY_KINDS))
    if kind == "price_multiple":
        low, high = _decimal(e, "multiple_min", at), _decimal(e, "multiple_max", at)
        basis = _text(e, "price_basis", at)
        if basis not in PRICE_BASES:
            _bad(where, f"penalty_rule {rule_id}.price_basis", " or ".join(PRICE_BASES))
        if not Decimal(0) < low <= high:
            _bad(where, f"penalty_rule {rule_id}", "0 < multiple_min <= multiple_max")
        return PenaltyRule(**common, multiple_min=low, multiple_max=high, price_basis=basis)  # type: ignore[arg-type]
    low_f, high_f = e.get("fine_min_fen"), e.get("fine_max_fen")
    if not (isinstance(low_f, int) and isinstance(high_f, int) and 0 <= low_f <= high_f):
        _bad(where, f"penalty_rule {rule_id}", "whole fen with fine_min_fen <= fine_max_fen")
    return PenaltyRule(**common, fine_min_fen=low_f, fine_max_fen=high_f)  # type: ignore[arg-type]


def _scheme(e: dict[str, Any], where: str) -> Scheme:
    at = f"{where}: scheme {e.get('id', '?')}"
    cap = _decimal(e, "offset_cap", at)
    if not Decimal(0) <= cap <= Decimal(1):
        _bad(where, f"{at}.offset_cap", "a share between 0 and 1 written as a string")
    return Scheme(
        _text(e, "id", at),
        _text(e, "name", at),
        _text(e, "name_zh", at),
        _codes(e, "allowance_types", at),
        _codes(e, "offset_types", at),
        cap,
        _text(e, "penalty_rule", at),
        _text(e, "source", at),
        _boundary(e, where, at),
        _local_share(e, where, at),
        tuple(e.get("local_offset_types", ())),
    )


def _local_share(e: dict[str, Any], where: str, at: str) -> Decimal | None:
    if "local_offset_min_share" not in e:
        return None
    share = _decimal(e, "local_offset_min_share", at)
    if not Decimal(0) <= share <= Decimal(1):
        _bad(where, f"{at}.local_offset_min_share", "a share between 0 and 1 written as a string")
    return share


def _boundary(e: dict[str, Any], where: str, at: str) -> str:
    boundary = e.get("boundary", "direct")
    if boundary not in ("direct", "total"):
        _bad(where, f"{at}.boundary", '"direct" or "total"')
    return str(boundary)


def _period(e: dict[str, Any], where: str) -> Period:
    at = f"{where}: period {e.get('id', '?')}"
    year = e.get("emissions_year")
    vintages = e.get("allowance_vintages")
    if not isinstance(year, int) or not 1990 <= year <= 2099:
        _bad(where, f"{at}.emissions_year", "a year")
    if not (isinstance(vintages, list) and vintages and all(isinstance(v, int) for v in vintages)):
        _bad(where, f"{at}.allowance_vintages", "a non-empty list of years")
    try:
        deadline = date.fromisoformat(_text(e, "deadline", at))
    except ValueError:
        _bad(where, f"{at}.deadline", "a date YYYY-MM-DD")
    return Period(
        _text(e, "id", at),
        _text(e, "scheme", at),
        year,
        tuple(vintages),
        deadline,
        _text(e, "source", at),
    )


def _list(raw: dict[str, Any], key: str, where: str) -> list[dict[str, Any]]:
    value = raw.get(key)
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        _bad(where, key, f"one or more [[{key}]] tables")
    return value


def _table(raw: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = raw.get(key)
    if not isinstance(value, dict):
        _bad(where, key, f"a [{key}] table")
    return value


def _text(e: dict[str, Any], key: str, at: str) -> str:
    value = e.get(key)
    if not isinstance(value, str) or not value.strip():
        raise RegistryRulesError(f"{at}: {key} must be non-empty text", f"{at}：{key} 不能为空")
    return value


def _codes(e: dict[str, Any], key: str, at: str) -> tuple[str, ...]:
    value = e.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RegistryRulesError(
            f"{at}: {key} must be a list of codes", f"{at}：{key} 须为代码列表"
        )
    return tuple(value)


def _decimal(e: dict[str, Any], key: str, at: str) -> Decimal:
    value = e.get(key)
    if not isinstance(value, str):
        raise RegistryRulesError(
            f"{at}: {key} must be a decimal written as a string (no floats)",
            f"{at}：{key} 须为字符串形式的小数（不用浮点数）",
        )
    try:
        return Decimal(value)
    except InvalidOperation as exc:
        raise RegistryRulesError(
            f"{at}: {key} {value!r} is not a number", f"{at}：{key} 不是数字"
        ) from exc


def _bad(where: str, field: str, wanted: str) -> NoReturn:
    raise RegistryRulesError(
        f"{where}: {field} must be {wanted}", f"{where}：{field} 应为 {wanted}"
    )
