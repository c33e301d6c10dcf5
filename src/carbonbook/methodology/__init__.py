"""Versioned methodologies: cited factor data and pure quantification (no database, no web).

- `model`: immutable values (Methodology, Behaviour, Limits, PointsRule, DuplicateRule, ...).
- `registry`: loading `data/methodologies/personal/ID@VERSION.toml`, lookup by `ID@VERSION`
  and by the date a version is in force.
- `quantify`: pure functions (quantify, aggregate_day, reconcile, duplicates, baselines).
- `errors`: refusals with stable codes (BAD_QUANTITY, UNKNOWN_BEHAVIOUR, BAD_UNIT, ...).
"""

from __future__ import annotations

from carbonbook.methodology.model import (
    Activity,
    Behaviour,
    DuplicateRule,
    EvidenceLevel,
    HouseholdBaselineRule,
    Limits,
    Methodology,
    PointsRule,
    Quantified,
)
from carbonbook.methodology.quantify import (
    Credit,
    DayTotal,
    DuplicateCheck,
    Reconciliation,
    Refusal,
    Uncovered,
    aggregate_day,
    check_daily_cap,
    check_in_force,
    find_cross_platform_duplicates,
    household_electricity_saving_kwh,
    local_day,
    parse_quantity,
    points_for_day,
    quantify,
    reconcile,
    reconcile_by_person,
    requantify,
)
from carbonbook.methodology.registry import Registry, default_registry, get, in_force

__all__ = [
    "Activity",
    "Behaviour",
    "Credit",
    "DayTotal",
    "DuplicateCheck",
    "DuplicateRule",
    "EvidenceLevel",
    "HouseholdBaselineRule",
    "Limits",
    "Methodology",
    "PointsRule",
    "Quantified",
    "Reconciliation",
    "Refusal",
    "Registry",
    "Uncovered",
    "aggregate_day",
    "check_daily_cap",
    "check_in_force",
    "default_registry",
    "find_cross_platform_duplicates",
    "get",
    "household_electricity_saving_kwh",
    "in_force",
    "local_day",
    "parse_quantity",
    "points_for_day",
    "quantify",
    "reconcile",
    "reconcile_by_person",
    "requantify",
]
