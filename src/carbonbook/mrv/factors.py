"""The factor library: default emission parameters as versioned methodology data.

Files live in `data/methodologies/mrv/` (shipped in the wheel as `carbonbook/_data/...`); each
value carries its source and status. Nothing here is a constant in code.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from carbonbook.mrv.errors import UnknownMethodologyError
from carbonbook.numbers import D

if TYPE_CHECKING:
    from decimal import Decimal


def data_dir() -> Path:
    """Where methodology data lives: the installed package's copy, else the repository's."""
    try:
        packaged = resources.files("carbonbook") / "_data" / "methodologies"
        if packaged.is_dir():
            return Path(str(packaged))
    except (ModuleNotFoundError, FileNotFoundError):  # pragma: no cover - always importable
        pass
    return Path(__file__).resolve().parents[3] / "data" / "methodologies"


@dataclass(frozen=True, slots=True)
class Parameter:
    value: Decimal
    source: str


@dataclass(frozen=True, slots=True)
class FuelDefaults:
    """A guideline's defaults for one fuel; the power guideline has no default NCV or carbon
    content (both are measured), only an oxidation rate and the carbon fallback."""

    unit: str
    ncv: Parameter | None
    carbon_content: Parameter | None
    oxidation_rate: Parameter | None


@dataclass(frozen=True, slots=True)
class CarbonFallback:
    """The power guideline's rule: with fewer than `min_measured_months` months of measured
    elemental carbon, the default carbon content replaces the measured one."""

    value: Parameter
    min_measured_months: int
    fuels: frozenset[str]


@dataclass(frozen=True, slots=True)
class Factor:
    unit: str
    factor: Parameter


@dataclass(frozen=True, slots=True)
class FactorSet:
    """One guideline's defaults (e.g. `gbt-32151.5-2015`)."""

    id: str
    title: str
    fuels: dict[str, FuelDefaults]
    process: dict[str, Factor]
    products: dict[str, Factor]
    heat_factor: Parameter | None
    carbon_fallback: CarbonFallback | None = None
    # The analyses a monthly carbon test must report of the same sample (交叉验证), and the
    # rule's citation; empty where the guideline asks for none.
    same_sample: tuple[str, ...] = ()
    same_sample_source: str = ""


@dataclass(frozen=True, slots=True)
class GridFactor:
    year: int
    factor: Parameter
    purpose: str


def _param(table: dict[str, Any], key: str, source: str) -> Parameter:
    status = table.get("status", "")
    return Parameter(D(str(table[key])), f"{source}; {status}" if status else source)


def _optional(table: dict[str, Any], key: str, source: str) -> Parameter | None:
    return _param(table, key, source) if key in table else None


def _cited(data: dict[str, Any], name: str) -> str:
    """A source key of the file as its citation and status."""
    entry = data.get("sources", {}).get(name)
    if isinstance(entry, dict):
        status = entry.get("status")
        return f"{entry.get('citation', name)}" + (f"; {status}" if status else "")
    return str(entry or name)


def _fuel_source(data: dict[str, Any], table: dict[str, Any], general: str) -> str:
    """A fuel's own cited source when it names one, else the file's fuel defaults'."""
    if "source" not in table:
        return general
    return f"{data['id']} default ({_cited(data, table['source'])})"


@cache
def factor_set(methodology: str) -> FactorSet:
    """The defaults of one guideline, by id.

    Raises:
        UnknownMethodologyError: no such file in the factor library.
    """
    path = data_dir() / "mrv" / f"{methodology}.toml"
    if not path.is_file() or methodology == "grid-factors":
        known = methodologies()
        raise UnknownMethodologyError(
            f"methodology: unknown {methodology!r}; known: {', '.join(known)}",
            f"methodology：未知方法学 {methodology!r}；已有：{', '.join(known)}",
        )
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    sources = data.get("sources", {})
    fuel_source = f"{data['id']} default ({sources.get('fuel_defaults', data['id'])})"
    process_source = f"{data['id']} default ({sources.get('process_defaults', data['id'])})"
    fuels = {
        name: FuelDefaults(
            unit=str(t["unit"]),
            ncv=_optional(t, "ncv_gj_per_unit", fuel_source),
            carbon_content=_optional(t, "carbon_content_tc_per_gj", fuel_source),
            oxidation_rate=_optional(t, "oxidation_rate", _fuel_source(data, t, fuel_source)),
        )
        for name, t in data.get("fuels", {}).items()
    }
    fallback = data.get("carbon_content_fallback")
    carbon_fallback = (
        CarbonFallback(
            Parameter(
                D(str(fallback["value_tc_per_gj"])),
                f"{data['id']} fallback: {fallback.get('note', '')} "
                f"({_cited(data, fallback['source'])})",
            ),
            int(fallback["min_measured_months"]),
            frozenset(fallback["fuels"]),
        )
        if fallback
        else None
    )
    process = {
        name: Factor(str(t["unit"]), _param(t, "factor_tco2_per_unit", process_source))
        for name, t in data.get("process", {}).items()
    }
    products = {
        name: Factor(str(t["unit"]), _param(t, "factor_tco2_per_unit", process_source))
        for name, t in data.get("products", {}).items()
    }
    heat = data.get("heat")
    heat_factor = (
        _param(heat, "factor_tco2_per_gj", f"{data['id']} default ({sources.get('heat', '')})")
        if heat
        else None
    )
    same_sample = data.get("rules", {}).get("same_sample", {})
    return FactorSet(
        str(data["id"]),
        str(data["title"]),
        fuels,
        process,
        products,
        heat_factor,
        carbon_fallback,
        tuple(str(key) for key in same_sample.get("value", ())),
        _cited(data, same_sample["source"]) if same_sample else "",
    )


def methodologies() -> list[str]:
    """The ids of the factor sets in the library, e.g. gbt-32151.5-2015."""
    return sorted(p.stem for p in (data_dir() / "mrv").glob("*.toml") if p.stem != "grid-factors")


@cache
def grid_factors() -> dict[int, GridFactor]:
    """Grid emission factors by accounting year."""
    data = tomllib.loads((data_dir() / "mrv" / "grid-factors.toml").read_text(encoding="utf-8"))
    return {
        int(year): GridFactor(
            int(year),
            Parameter(D(str(t["factor_tco2_per_mwh"])), f"grid-factors {year}: {t['source']}"),
            str(t["purpose"]),
        )
        for year, t in data["years"].items()
    }


def grid_factor_for(year: int) -> GridFactor | None:
    """The factor for `year`, else the latest published before it, else None."""
    table = grid_factors()
    candidates = [y for y in table if y <= year]
    return table[max(candidates)] if candidates else None
