"""Small valid methodology documents for tests, to be broken one field at a time."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

from carbonbook.methodology.model import Methodology
from carbonbook.methodology.registry import parse

EVIDENCE = {
    "operator": {"weight": "1", "source": "test"},
    "self": {"weight": "0.5", "source": "test"},
}


def behaviour(code: str = "walk", **overrides: Any) -> dict[str, Any]:
    table: dict[str, Any] = {
        "code": code,
        "name": code,
        "name_zh": code,
        "unit": "km",
        "factor_g_per_unit": "10",
        "factor_status": "test",
        "factor_source": "test source",
        "baseline": "test",
        "limits": {"max_per_event": "50", "daily_cap_units": "30", "source": "test"},
    }
    table.update(overrides)
    return table


def document(ident: str = "x", version: str = "1", **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": ident,
        "version": version,
        "title": "test",
        "scope": "personal",
        "status": "test",
        "source": "test",
        "effective_from": date(2023, 1, 1),
        "effective_from_source": "test",
        "timezone": "Asia/Shanghai",
        "points": {"grams_per_point": "100", "source": "test"},
        "duplicates": {"window_minutes": 10, "source": "test"},
        "evidence": copy.deepcopy(EVIDENCE),
        "behaviours": [behaviour()],
    }
    data.update(overrides)
    return data


def methodology(ident: str = "x", version: str = "1", **overrides: Any) -> Methodology:
    return parse(document(ident, version, **overrides), f"{ident}@{version}.toml")
