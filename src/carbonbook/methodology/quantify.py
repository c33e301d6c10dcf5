"""Pure quantification: acts in, milligrams and points out. No database, no clock.

- `quantify` turns one act into milligrams of CO2e under one methodology version, or raises
  the first rule it breaks (UNKNOWN_BEHAVIOUR, BAD_UNIT, BAD_QUANTITY, BAD_EVIDENCE,
  NO_FACTOR), in that order.
- `aggregate_day` takes one person's acts of one local (Asia/Shanghai) day, applies the daily
  cap per behaviour (BAD_TIME, DAILY_CAP), sums milligrams and computes points.
- `reconcile` re-quantifies records under another version; what the target does not cover
  is reported as uncovered, never guessed.
- `find_cross_platform_duplicates` applies the duplicate rule; `household_electricity_saving_kwh`
  applies Shenzhen's household-electricity baseline rule.

IMPORTANT: no float ever enters. Quantities are Decimals built by `carbonbook.numbers.D`
from strings; the only rounding is `grams_to_mg_half_up` (to the milligram) and the points
rule (`numbers.to_units_half_up`), both half-up.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from carbonbook.methodology import errors
from carbonbook.methodology.model import (
    DEFAULT_EVIDENCE,
    Activity,
    Behaviour,
    Methodology,
    Quantified,
    grams_to_mg_half_up,
)
from carbonbook.numbers import D, NotADecimalError, mg_to_grams_text, round_half_up

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from datetime import date

    from carbonbook.methodology.model import DuplicateRule, HouseholdBaselineRule

__all__ = [
    "Credit",
    "DayTotal",
    "DuplicateCheck",
    "Reconciliation",
    "Refusal",
    "Uncovered",
    "aggregate_day",
    "check_daily_cap",
    "check_in_force",
    "factor_for",
    "find_cross_platform_duplicates",
    "household_electricity_saving_kwh",
    "local_day",
    "parse_quantity",
    "points_for_day",
    "quantify",
    "reconcile",
    "reconcile_by_person",
    "requantify",
]


WATT_HOUR = Decimal("0.001")  # kWh


# -- one act ------------------------------------------------------------------------------------


def parse_quantity(text: str) -> Decimal:
    """A quantity from its text ("2.5"), exactly.

    Raises:
        BadQuantityError: not a finite decimal number (floats and NaN are refused too).
    """
    try:
        return D(text)
    except NotADecimalError:
        raise errors.BadQuantityError(
            f"quantity {text!r} is not a decimal number",
            f"数量 {text!r} 不是十进制数",
            quantity=str(text),
        ) from None


def factor_for(methodology: Methodology, behaviour: Behaviour, evidence: str) -> Decimal:
    """The g CO2e per unit applied to `behaviour` at an evidence level.

    An exact factor published for the level wins (Hubei: bus 52 g by self check-in);
    otherwise the behaviour's factor times the methodology's weight for the level.

    Raises:
        BadEvidenceError: the version does not weigh this evidence level.
        NoFactorError: no factor is published for the behaviour.
    """
    level = methodology.evidence.get(evidence)
    if level is None:
        known = ", ".join(sorted(methodology.evidence))
        raise errors.BadEvidenceError(
            f"{methodology.ref} does not accept evidence {evidence!r} (it accepts: {known})",
            f"{methodology.ref} 不接受证据等级 {evidence!r}（接受：{known}）",
            methodology=methodology.ref,
            evidence=evidence,
        )
    exact = behaviour.evidence_factors.get(evidence)
    if exact is not None:
        return exact
    if behaviour.factor_g_per_unit is None:
        raise errors.NoFactorError(
            f"{methodology.ref} publishes no factor for {behaviour.code} "
            f"({behaviour.factor_status}): it cannot be quantified",
            f"{methodology.ref} 未公布 {behaviour.code} 的排放因子（{behaviour.factor_status}），"
            "无法量化",
            methodology=methodology.ref,
            behaviour=behaviour.code,
        )
    if level.weight == 1:
        return behaviour.factor_g_per_unit
    return behaviour.factor_g_per_unit * level.weight


def _check_quantity(methodology: Methodology, behaviour: Behaviour, quantity: Decimal) -> None:
    code, unit, limits = behaviour.code, behaviour.unit, behaviour.limits
    where = {"methodology": methodology.ref, "behaviour": code, "quantity": str(quantity)}
    if not isinstance(quantity, Decimal) or isinstance(quantity, bool):
        raise errors.BadQuantityError(
            f"quantity {quantity!r} of {code} must be a Decimal built from a string",
            f"{code} 的数量 {quantity!r} 必须是由字符串构造的 Decimal",
            **where,
        )
    if not quantity.is_finite():
        raise errors.BadQuantityError(
            f"quantity {quantity} of {code} is not a number",
            f"{code} 的数量 {quantity} 不是数字",
            **where,
        )
    if quantity <= 0:
        raise errors.BadQuantityError(
            f"quantity {quantity} {unit} of {code} must be positive",
            f"{code} 的数量 {quantity} {unit} 必须为正数",
            **where,
        )
    if quantity <= limits.min_per_event or quantity > limits.max_per_event:
        raise errors.BadQuantityError(
            f"quantity {quantity} {unit} of {code} is outside the plausible range "
            f"({limits.min_per_event}, {limits.max_per_event}] per event under {methodology.ref}",
            f"{code} 的数量 {quantity} {unit} 超出 {methodology.ref} 的单次合理范围 "
            f"({limits.min_per_event}, {limits.max_per_event}]",
            **where,
        )
    if limits.whole_units and quantity != quantity.to_integral_value():
        raise errors.BadQuantityError(
            f"quantity {quantity} of {code} must be a whole number of {unit}",
            f"{code} 的数量 {quantity} 必须是整数个 {unit}",
            **where,
        )


def quantify(
    methodology: Methodology,
    behaviour: str,
    quantity: Decimal,
    unit: str,
    evidence: str = DEFAULT_EVIDENCE,
) -> Quantified:
    """Milligrams of CO2e for one act under one methodology version.

    Checks, in this order: the behaviour is covered, the unit is the behaviour's, the
    quantity is a positive Decimal inside the plausible range (whole for counted units),
    the evidence level is weighed, a factor is published.

    Args:
        methodology: the version to quantify under.
        behaviour: the behaviour code, e.g. "shared_bike".
        quantity: the activity in `unit`, a Decimal from a string (`numbers.D`).
        unit: must equal the behaviour's unit; units are never converted.
        evidence: "operator" (partner data), "screenshot", "self" (check-in), ...

    Returns:
        the milligrams (rounded half-up once), the `ID@VERSION` and the factor applied.

    Raises:
        UnknownBehaviourError, BadUnitError, BadQuantityError, BadEvidenceError, NoFactorError.
    """
    known = methodology.behaviour(behaviour)
    if unit != known.unit:
        raise errors.BadUnitError(
            f"{behaviour} is counted in {known.unit} under {methodology.ref}, not in {unit!r}",
            f"{methodology.ref} 中 {behaviour} 以 {known.unit} 计量，而不是 {unit!r}",
            methodology=methodology.ref,
            behaviour=behaviour,
            unit=unit,
        )
    _check_quantity(methodology, known, quantity)
    factor = factor_for(methodology, known, evidence)
    return Quantified(
        methodology=methodology.ref,
        behaviour=behaviour,
        quantity=quantity,
        unit=unit,
        evidence=evidence,
        factor_g_per_unit=factor,
        reduction_mg=grams_to_mg_half_up(quantity, factor),
    )


def local_day(methodology: Methodology, occurred_at: datetime) -> date:
    """The methodology's local calendar day (Asia/Shanghai) of an instant.

    Raises:
        BadTimeError: `occurred_at` has no UTC offset.
    """
    if occurred_at.tzinfo is None or occurred_at.utcoffset() is None:
        raise errors.BadTimeError(
            f"occurred_at {occurred_at.isoformat()} needs a UTC offset",
            f"发生时间 {occurred_at.isoformat()} 缺少 UTC 偏移",
            occurred_at=occurred_at.isoformat(),
        )
    return occurred_at.astimezone(ZoneInfo(methodology.timezone)).date()


def check_in_force(methodology: Methodology, day: date) -> None:
    """Refuse an act on a day outside the version's own validity.

    Raises:
        NotInForceError: `day` is before `effective_from` or after `effective_until`.
    """
    if not methodology.in_force_on(day):
        until = methodology.effective_until.isoformat() if methodology.effective_until else "-"
        raise errors.NotInForceError(
            f"{day.isoformat()} is outside {methodology.ref}'s validity "
            f"({methodology.effective_from.isoformat()} to {until})",
            f"{day.isoformat()} 不在 {methodology.ref} 的有效期内"
            f"（{methodology.effective_from.isoformat()} 至 {until}）",
            methodology=methodology.ref,
            day=day.isoformat(),
        )


# -- one day ------------------------------------------------------------------------------------


def check_daily_cap(
    methodology: Methodology, behaviour: str, used_units: Decimal, quantity: Decimal
) -> None:
    """Refuse an act that would take a person's day past the behaviour's daily cap.

    Args:
        used_units: what the day already holds of the behaviour (credited acts only).
        quantity: the new act's quantity.

    Raises:
        DailyCapError: `used_units + quantity` is above the cap (the whole act is refused).
    """
    known = methodology.behaviour(behaviour)
    cap = known.limits.daily_cap_units
    if used_units + quantity > cap:
        raise errors.DailyCapError(
            f"{behaviour}: {used_units} + {quantity} {known.unit} passes the daily cap of "
            f"{cap} {known.unit} under {methodology.ref}",
            f"{behaviour}：当日已计 {used_units}，再加 {quantity} {known.unit} 超过 "
            f"{methodology.ref} 的每日上限 {cap} {known.unit}",
            methodology=methodology.ref,
            behaviour=behaviour,
            used=str(used_units),
            quantity=str(quantity),
            cap=str(cap),
        )


def points_for_day(methodology: Methodology, reduction_mg: int) -> int:
    """Points for a person's daily total by the version's points rule.

    bj-green-life@2023: one point per 100 g, rounded half-up (1250.00 g -> 13, 50.72 g -> 1).
    """
    return methodology.points.points(reduction_mg)


@dataclass(frozen=True, slots=True)
class Credit:
    """An act credited in a day, with its quantification."""

    activity: Activity
    quantified: Quantified


@dataclass(frozen=True, slots=True)
class Refusal:
    """An act refused, with the stable code and both messages."""

    activity: Activity
    code: str
    message: str
    message_zh: str

    @classmethod
    def of(cls, activity: Activity, error: errors.QuantifyError) -> Refusal:
        """The refusal of `activity` for `error`."""
        return cls(activity, error.code, error.message, error.message_zh)


@dataclass(frozen=True, slots=True)
class DayTotal:
    """One person's local day under one methodology: milligrams, points, what was refused."""

    methodology: str
    day: date
    reduction_mg: int
    points: int
    credited: tuple[Credit, ...]
    refused: tuple[Refusal, ...]
    units: Mapping[str, Decimal] = field(hash=False)

    @property
    def grams_text(self) -> str:
        """The day's total in grams with two decimals ("1250.00")."""
        return mg_to_grams_text(self.reduction_mg)


def aggregate_day(methodology: Methodology, day: date, activities: Iterable[Activity]) -> DayTotal:
    """One person's acts of one local day: daily caps applied, milligrams summed, points.

    Acts are taken in time order (ties in the order given). Each is quantified; an act not
    on `day` in the methodology's time zone is refused BAD_TIME; an act that would take the
    behaviour past its daily cap is refused whole (DAILY_CAP), and later smaller acts may
    still fit. Refusals are returned, not raised, so a caller can report them all.

    Args:
        methodology: the version to count under.
        day: the local (Asia/Shanghai) calendar day.
        activities: the person's accepted acts (duplicates already removed).

    Returns:
        the day's milligrams, points, credited acts and refusals, and units used per behaviour.

    Raises:
        ValueError: the acts name more than one person.
    """
    ordered = sorted(activities, key=_instant_key)
    people = {a.person for a in ordered}
    if len(people) > 1:
        raise ValueError(f"aggregate_day counts one person's acts, got {sorted(people)}")
    used: dict[str, Decimal] = defaultdict(Decimal)
    credited: list[Credit] = []
    refused: list[Refusal] = []
    for activity in ordered:
        try:
            on = local_day(methodology, activity.occurred_at)
            if on != day:
                raise errors.BadTimeError(
                    f"the act at {activity.occurred_at.isoformat()} is on {on.isoformat()} in "
                    f"{methodology.timezone}, not on {day.isoformat()}",
                    f"{activity.occurred_at.isoformat()} 的行为在 {methodology.timezone} 时区属于 "
                    f"{on.isoformat()}，不属于 {day.isoformat()}",
                    occurred_at=activity.occurred_at.isoformat(),
                )
            quantified = quantify(
                methodology,
                activity.behaviour,
                activity.quantity,
                activity.unit,
                activity.evidence,
            )
            check_daily_cap(
                methodology, activity.behaviour, used[activity.behaviour], activity.quantity
            )
        except errors.QuantifyError as refusal:
            refused.append(Refusal.of(activity, refusal))
            continue
        used[activity.behaviour] += activity.quantity
        credited.append(Credit(activity, quantified))
    total_mg = sum(c.quantified.reduction_mg for c in credited)
    return DayTotal(
        methodology=methodology.ref,
        day=day,
        reduction_mg=total_mg,
        points=points_for_day(methodology, total_mg),
        credited=tuple(credited),
        refused=tuple(refused),
        units=MappingProxyType(dict(used)),
    )


_NAIVE_FIRST = datetime.min.replace(tzinfo=UTC)


def _instant_key(activity: Activity) -> tuple[int, datetime]:
    # Naive times sort first (local_day refuses them BAD_TIME); aware ones by their instant.
    if activity.occurred_at.utcoffset() is None:
        return (0, _NAIVE_FIRST)
    return (1, activity.occurred_at)


# -- cross-platform duplicates --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DuplicateCheck:
    """The outcome of the duplicate rule: the acts kept, and each duplicate with its original."""

    kept: tuple[Activity, ...]
    duplicates: tuple[tuple[Activity, Activity], ...]


def find_cross_platform_duplicates(
    rule: DuplicateRule, activities: Iterable[Activity]
) -> DuplicateCheck:
    """Apply the cross-platform duplicate rule to reports in the order they arrived.

    A report is a duplicate when an earlier kept report names the same person and behaviour,
    comes from another platform, and overlaps it in time (see `DuplicateRule.same_act`); it
    credits nothing. The first report is kept.
    """
    kept: list[Activity] = []
    by_key: dict[tuple[str, str], list[Activity]] = defaultdict(list)
    duplicates: list[tuple[Activity, Activity]] = []
    for activity in activities:
        original = next(
            (
                k
                for k in by_key[(activity.person, activity.behaviour)]
                if rule.same_act(k, activity)
            ),
            None,
        )
        if original is not None:
            duplicates.append((activity, original))
            continue
        kept.append(activity)
        by_key[(activity.person, activity.behaviour)].append(activity)
    return DuplicateCheck(tuple(kept), tuple(duplicates))


# -- reconcile ------------------------------------------------------------------------------


def requantify(record: Quantified, target: Methodology) -> Quantified:
    """The record's act quantified under `target` (same quantity, unit and evidence).

    Raises:
        QuantifyError: the target does not cover the act (UNKNOWN_BEHAVIOUR, BAD_UNIT, ...).
    """
    return quantify(target, record.behaviour, record.quantity, record.unit, record.evidence)


@dataclass(frozen=True, slots=True)
class Uncovered:
    """A record the target methodology does not cover, with why (a QuantifyError code)."""

    record: Quantified
    code: str
    message: str
    message_zh: str


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """Records re-quantified under `target`, in input order: a Quantified under the target
    where it covers the act, else an Uncovered holding the original record."""

    target: str
    results: tuple[Quantified | Uncovered, ...]

    @property
    def covered(self) -> tuple[Quantified, ...]:
        """The records as quantified under the target."""
        return tuple(r for r in self.results if isinstance(r, Quantified))

    @property
    def uncovered(self) -> tuple[Uncovered, ...]:
        """The records the target does not cover."""
        return tuple(r for r in self.results if isinstance(r, Uncovered))

    @property
    def reduction_mg(self) -> int:
        """Milligrams under the target of the covered records."""
        return sum(r.reduction_mg for r in self.covered)

    @property
    def uncovered_behaviours(self) -> tuple[str, ...]:
        """The behaviour codes the target does not cover, sorted."""
        return tuple(sorted({u.record.behaviour for u in self.uncovered}))

    @property
    def records(self) -> tuple[Quantified, ...]:
        """Every record: under the target where covered, else the original (input order)."""
        return tuple(r if isinstance(r, Quantified) else r.record for r in self.results)


def reconcile(records: Iterable[Quantified], target: Methodology) -> Reconciliation:
    """Re-quantify records under another methodology version ("250 or 334 g/km?").

    Each record keeps its quantity, unit and evidence; the target's factor replaces the
    source's. A behaviour the target does not cover, counts in another unit, has no factor
    for, or finds implausible is reported as uncovered with the reason, never guessed.
    Daily caps are not re-applied: reconcile compares factors, record by record.
    """
    results: list[Quantified | Uncovered] = []
    for record in records:
        try:
            results.append(requantify(record, target))
        except errors.QuantifyError as refusal:
            results.append(Uncovered(record, refusal.code, refusal.message, refusal.message_zh))
    return Reconciliation(target.ref, tuple(results))


def reconcile_by_person(
    records: Mapping[str, Iterable[Quantified]], target: Methodology
) -> dict[str, Reconciliation]:
    """`reconcile` per person: {"chen": Reconciliation, ...} in sorted order of names."""
    return {person: reconcile(records[person], target) for person in sorted(records)}


# -- household electricity (Shenzhen) -------------------------------------------------------


def household_electricity_saving_kwh(
    rule: HouseholdBaselineRule,
    day_kwh: Decimal,
    city_average_kwh: Decimal,
    trailing_kwh: Sequence[Decimal],
) -> Decimal:
    """kWh saved in a day under Shenzhen's baseline rule (2022-06-13 scheme).

    The baseline is the city's per-person daily residential average (`city_average_kwh`,
    as published for the household); a household whose own trailing mean is above it is
    compared with its own trailing mean instead. Saving = baseline - day, never below 0.
    The trailing mean is rounded half-up to the watt-hour (0.001 kWh), a carbonbook rule:
    the scheme publishes none.

    Args:
        rule: the behaviour's baseline rule (`trailing_days`, 7 in Shenzhen).
        day_kwh: the household's metered consumption of the day.
        city_average_kwh: the city average that applies to the household that day.
        trailing_kwh: the household's consumption on each of the `trailing_days` days before.

    Raises:
        BadQuantityError: a negative reading, or not exactly `trailing_days` trailing days.
    """
    readings = [day_kwh, city_average_kwh, *trailing_kwh]
    if any(not isinstance(r, Decimal) or not r.is_finite() or r < 0 for r in readings):
        raise errors.BadQuantityError(
            f"electricity readings must be non-negative Decimals, got {readings}",
            f"用电读数必须是非负 Decimal，实际为 {readings}",
        )
    if len(trailing_kwh) != rule.trailing_days:
        raise errors.BadQuantityError(
            f"the baseline needs {rule.trailing_days} trailing days of readings, "
            f"got {len(trailing_kwh)}",
            f"基线需要前 {rule.trailing_days} 天的读数，实际为 {len(trailing_kwh)} 天",
        )
    trailing_mean = round_half_up(sum(trailing_kwh, Decimal(0)) / rule.trailing_days, WATT_HOUR)
    # Above the city average, the household is compared with its own trailing mean.
    baseline = max(city_average_kwh, trailing_mean)
    return max(baseline - day_kwh, Decimal(0))
