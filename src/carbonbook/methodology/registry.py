"""Loading methodology versions from data files and finding them by `ID@VERSION`."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from carbonbook.methodology import errors
from carbonbook.methodology.model import Behaviour, Methodology
from carbonbook.numbers import D, NotADecimalError

if TYPE_CHECKING:
    from decimal import Decimal


def data_dir() -> Path:
    """Where methodology data lives: the installed package's copy, else the repository's."""
    packaged = resources.files("carbonbook") / "_data" / "methodologies"
    if packaged.is_dir() and (Path(str(packaged)) / "personal").is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[3] / "data" / "methodologies"


def _decimal(table: dict[str, Any], key: str, where: str) -> Decimal:
    value = table.get(key)
    if not isinstance(value, str):
        raise errors.InvalidMethodologyError(
            f"{where}.{key} must be a decimal written as a string",
            f"{where}.{key} 必须是字符串形式的数字",
        )
    try:
        return D(value)
    except NotADecimalError:
        raise errors.InvalidMethodologyError(f"{where}.{key}: {value!r} is not a decimal") from None


def parse(data: dict[str, Any], where: str) -> Methodology:
    """Build a methodology from its TOML table, refusing missing sources and bad numbers."""
    behaviours = {}
    for code, table in data.get("behaviours", {}).items():
        at = f"{where}: behaviours.{code}"
        if not table.get("source"):
            raise errors.InvalidMethodologyError(f"{at} has no source", f"{at} 缺少来源")
        behaviours[code] = Behaviour(
            code=code,
            name=str(table.get("name", code)),
            unit=str(table["unit"]),
            factor_g_per_unit=_decimal(table, "factor_g_per_unit", at),
            source=str(table["source"]),
            baseline=str(table.get("baseline", "")),
            max_per_event=_decimal(table, "max_per_event", at),
            daily_cap_units=_decimal(table, "daily_cap_units", at),
        )
    points = data.get("points", {})
    evidence = {k: D(str(v)) for k, v in data.get("evidence", {"operator": "1"}).items()}
    return Methodology(
        id=str(data["id"]),
        version=str(data["version"]),
        title=str(data.get("title", data["id"])),
        effective_from=str(data.get("effective_from", "")),
        timezone=str(data.get("timezone", "Asia/Shanghai")),
        status=str(data.get("status", "")),
        behaviours=behaviours,
        grams_per_point=_decimal(points, "grams_per_point", f"{where}: points"),
        cross_platform_window_minutes=int(
            data.get("duplicates", {}).get("cross_platform_window_minutes", 0)
        ),
        evidence_weights=evidence,
    )


@cache
def all_methodologies() -> dict[str, Methodology]:
    """Every personal methodology version shipped, by `ID@VERSION`."""
    found: dict[str, Methodology] = {}
    for path in sorted((data_dir() / "personal").glob("*.toml")):
        methodology = parse(tomllib.loads(path.read_text(encoding="utf-8")), path.name)
        if methodology.ref != path.stem:
            raise errors.InvalidMethodologyError(
                f"{path.name} declares {methodology.ref}: the file name must be ID@VERSION.toml"
            )
        found[methodology.ref] = methodology
    return found


def get(ref: str) -> Methodology:
    """The methodology `ID@VERSION`, or UnknownMethodologyError naming the known ones."""
    found = all_methodologies().get(ref)
    if found is None:
        known = ", ".join(sorted(all_methodologies()))
        raise errors.UnknownMethodologyError(
            f"unknown methodology {ref!r}; known: {known}", f"未知方法学 {ref!r}；已有：{known}"
        )
    return found
