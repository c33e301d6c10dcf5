"""Methodologies as immutable values, and the pure rules that turn acts into milligrams.

A methodology version is data (data/methodologies/personal/ID@VERSION.toml): each behaviour
has a unit, a factor in g CO2e per unit with its source, a plausible maximum per event and a
daily cap; a points rule converts a person's daily total to points. Every quantified record
keeps `ID@VERSION`, so it can be re-quantified under another methodology (reconcile).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from carbonbook.methodology import errors
from carbonbook.numbers import to_units_half_up

MG_PER_G = Decimal(1000)
ONE_MG = Decimal("0.001")


@dataclass(frozen=True, slots=True)
class Behaviour:
    code: str
    name: str
    unit: str
    factor_g_per_unit: Decimal
    source: str
    baseline: str
    max_per_event: Decimal
    daily_cap_units: Decimal

    def reduction_mg(self, quantity: Decimal, weight: Decimal = Decimal(1)) -> int:
        """Milligrams of CO2e for `quantity` units, rounded half-up to the milligram."""
        return to_units_half_up(quantity * self.factor_g_per_unit * weight, ONE_MG)


@dataclass(frozen=True, slots=True)
class Methodology:
    id: str
    version: str
    title: str
    effective_from: str
    timezone: str
    status: str
    behaviours: dict[str, Behaviour]
    grams_per_point: Decimal
    cross_platform_window_minutes: int
    evidence_weights: dict[str, Decimal]

    @property
    def ref(self) -> str:
        """`ID@VERSION`, the name every record cites."""
        return f"{self.id}@{self.version}"

    def behaviour(self, code: str) -> Behaviour:
        found = self.behaviours.get(code)
        if found is None:
            raise errors.UnknownBehaviourError(
                f"{self.ref} does not cover behaviour {code!r}",
                f"{self.ref} 不包含行为 {code!r}",
            )
        return found

    def quantify(self, code: str, quantity: Decimal, unit: str, evidence: str = "operator") -> int:
        """Milligrams of CO2e for one event, or the first rule it breaks.

        Args:
            code: the behaviour (e.g. "shared_bike").
            quantity: the activity, in `unit`.
            unit: must be the behaviour's unit.
            evidence: how the act is evidenced; the methodology weighs it.

        Raises:
            UnknownBehaviourError, BadUnitError, BadQuantityError.
        """
        behaviour = self.behaviour(code)
        if unit != behaviour.unit:
            raise errors.BadUnitError(
                f"{code} is counted in {behaviour.unit}, not {unit!r}",
                f"{code} 以 {behaviour.unit} 计量，而不是 {unit!r}",
            )
        if not quantity.is_finite() or quantity <= 0:
            raise errors.BadQuantityError(
                f"quantity {quantity} must be positive", f"数量 {quantity} 必须为正"
            )
        if quantity > behaviour.max_per_event:
            raise errors.BadQuantityError(
                f"quantity {quantity} {unit} is above the plausible "
                f"{behaviour.max_per_event} per event",
                f"数量 {quantity} {unit} 超过单次合理上限 {behaviour.max_per_event}",
            )
        weight = self.evidence_weights.get(evidence)
        if weight is None:
            raise errors.BadQuantityError(
                f"unknown evidence level {evidence!r}", f"未知的证据等级 {evidence!r}"
            )
        return behaviour.reduction_mg(quantity, weight)

    def points_for_day(self, day_total_mg: int) -> int:
        """Points for a person's daily total: one per `grams_per_point`, rounded half-up."""
        return to_units_half_up(Decimal(day_total_mg) / MG_PER_G, self.grams_per_point)
