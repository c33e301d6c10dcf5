"""Methodology versions as immutable values: behaviours, factors, limits and rules.

A methodology version is data (`data/methodologies/personal/ID@VERSION.toml`), loaded by
`registry.py`: each behaviour has a unit, a factor in g CO2e per unit with its source and
status, a baseline note, limits (plausible range per event, daily cap), and optionally exact
factors per evidence level; the version has evidence weights, a points rule and a
cross-platform duplicate rule, each with its source. Every quantified record keeps
`ID@VERSION`, so it can be re-quantified under another methodology (reconcile).

The rules that use these values (quantify, daily totals, reconcile) are pure functions in
`quantify.py`; the methods here are the small rules that belong to one value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, localcontext
from types import MappingProxyType
from typing import TYPE_CHECKING

from carbonbook.methodology import errors
from carbonbook.numbers import mg_to_grams_text, to_units_half_up

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

MG_PER_G = Decimal(1000)
ONE_MG = Decimal("0.001")
# IMPORTANT: published personal factors carry at most two decimals of a gram (45.72 g per
# order), so an integer quantity always gives a whole number of milligrams.
FACTOR_PLACES = 2
DEFAULT_EVIDENCE = "operator"


def _digits(value: Decimal) -> int:
    """Digits needed to write `value` as an integer coefficient (trailing zeros included)."""
    _, digits, exponent = value.as_tuple()
    return len(digits) + (exponent if isinstance(exponent, int) and exponent > 0 else 0)


def grams_to_mg_half_up(*grams_factors: Decimal) -> int:
    """Milligrams for the product of `grams_factors` (grams), rounded half-up once.

    IMPORTANT: the product is exact (the precision grows with the digits) and the one
    rounding, to the milligram, goes through `numbers.to_units_half_up`.
    """
    digits = sum(_digits(value) for value in grams_factors)
    with localcontext(prec=max(digits + 8, 28)):
        product = Decimal(1)
        for value in grams_factors:
            product *= value
        return to_units_half_up(product, ONE_MG)


def _frozen(mapping: Mapping[str, object] | None) -> MappingProxyType[str, object]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True, slots=True)
class Limits:
    """Anti-fraud limits of one behaviour (units of the behaviour).

    A quantity must be above `min_per_event` (0 unless stated) and at most `max_per_event`;
    counted units (orders, parcels, trips) must be whole; a person's day may hold at most
    `daily_cap_units`. `source` says who set them (a scheme, or carbonbook by default).
    """

    max_per_event: Decimal
    daily_cap_units: Decimal
    source: str
    min_per_event: Decimal = Decimal(0)
    whole_units: bool = False


@dataclass(frozen=True, slots=True)
class HouseholdBaselineRule:
    """Shenzhen's household-electricity baseline (2022-06-13 scheme).

    The baseline is the city's per-person daily residential average; a household whose own
    trailing average is above it is compared only with its own trailing `trailing_days` mean.
    """

    trailing_days: int
    source: str
    kind: str = "city_average_or_own_trailing_average"
    city_kwh_per_day: Decimal | None = None  # None: the scheme's figure is not cited yet
    city_source: str = ""

    def baseline_kwh(self, trailing: Sequence[Decimal]) -> Decimal | None:
        """The kWh a day's use is compared with, given the household's earlier daily uses.

        The city's figure, unless the household has `trailing_days` days of history whose mean
        is above it: then that mean (a heavy user earns only by cutting its own use). Fewer days
        of history fall back to the city's figure, the conservative choice for heavy users.
        None when the methodology carries no city figure (the day cannot be quantified).
        """
        if self.city_kwh_per_day is None:
            return None
        if len(trailing) >= self.trailing_days:
            recent = trailing[-self.trailing_days :]
            own = sum(recent, Decimal(0)) / Decimal(self.trailing_days)
            if own > self.city_kwh_per_day:
                return own
        return self.city_kwh_per_day


@dataclass(frozen=True, slots=True)
class Behaviour:
    """One behaviour of one methodology version (e.g. `shared_bike` in km).

    `factor_g_per_unit` is None when the scheme publishes no factor (the behaviour is known,
    e.g. by its baseline rule, but cannot be quantified). `evidence_factors` holds exact
    published factors per evidence level (Hubei: bus 105 g with a screenshot, 52 g by self
    check-in); levels not listed take the methodology's weight times `factor_g_per_unit`.
    """

    code: str
    name: str
    name_zh: str
    unit: str
    factor_g_per_unit: Decimal | None
    factor_status: str
    factor_source: str
    baseline: str
    limits: Limits
    evidence_factors: Mapping[str, Decimal] = field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )
    evidence_factors_source: str = ""
    baseline_rule: HouseholdBaselineRule | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "evidence_factors", _frozen(self.evidence_factors))

    @property
    def source(self) -> str:
        """The factor's source (kept for callers written before `factor_source`)."""
        return self.factor_source

    @property
    def max_per_event(self) -> Decimal:
        """The plausible maximum per event, in the behaviour's unit."""
        return self.limits.max_per_event

    @property
    def daily_cap_units(self) -> Decimal:
        """The most a person's day may hold of this behaviour, in its unit."""
        return self.limits.daily_cap_units

    def reduction_mg(self, quantity: Decimal, weight: Decimal = Decimal(1)) -> int:
        """Milligrams of CO2e for `quantity` units at `weight`, rounded half-up to the mg.

        Does no validation (see `quantify.quantify` for the checked path).

        Raises:
            NoFactorError: the scheme publishes no factor for this behaviour.
        """
        if self.factor_g_per_unit is None:
            raise errors.NoFactorError(
                f"no factor is published for {self.code}",
                f"{self.code} 没有公布的排放因子",
                behaviour=self.code,
            )
        return grams_to_mg_half_up(quantity, self.factor_g_per_unit, weight)


@dataclass(frozen=True, slots=True)
class EvidenceLevel:
    """How an act is evidenced (operator data, a screenshot, a self check-in) and its weight."""

    level: str
    weight: Decimal
    source: str


@dataclass(frozen=True, slots=True)
class PointsRule:
    """Points for a person's total of one period: one per `grams_per_point`, rounded half-up.

    bj-green-life@2023: one point per 100 g of the Asia/Shanghai day, 1.25 kg -> 13 points.
    """

    grams_per_point: Decimal
    source: str
    rounding: str = "half_up"
    period: str = "day"

    def points(self, reduction_mg: int) -> int:
        """Points for a period's total in milligrams (四舍五入, half-up)."""
        return to_units_half_up(Decimal(reduction_mg), self.grams_per_point * MG_PER_G)


@dataclass(frozen=True, slots=True)
class Activity:
    """One reported act, as a partner platform or the person reports it.

    `occurred_at` must carry a UTC offset; `ended_at` (optional) closes the act's time
    window, which is a single instant otherwise. `platform`, `event_id` and `person` identify
    the report; they are optional for pure calculations.
    """

    behaviour: str
    quantity: Decimal
    unit: str
    occurred_at: datetime
    evidence: str = DEFAULT_EVIDENCE
    platform: str = ""
    event_id: str = ""
    person: str = ""
    ended_at: datetime | None = None

    @property
    def window(self) -> tuple[datetime, datetime]:
        """The act's time window: [occurred_at, ended_at or occurred_at]."""
        return self.occurred_at, self.ended_at or self.occurred_at


@dataclass(frozen=True, slots=True)
class DuplicateRule:
    """The cross-platform duplicate rule (one act claimed by two apps is credited once).

    Two reports are the same act when they name the same person and behaviour, come from
    different platforms, and their time windows overlap once each is widened by
    `window_minutes` (for instants: they lie at most `window_minutes` apart). The first
    report is kept (`keep = "first"`); the later one credits nothing.
    """

    window_minutes: int
    source: str
    keep: str = "first"

    def same_act(self, first: Activity, second: Activity) -> bool:
        """Whether `second` repeats `first` from another platform."""
        if (first.person, first.behaviour) != (second.person, second.behaviour):
            return False
        if first.platform == second.platform:
            return False  # the same platform's repeats are caught by (platform, event_id)
        slack = timedelta(minutes=self.window_minutes)
        (a_start, a_end), (b_start, b_end) = first.window, second.window
        return a_start <= b_end + slack and b_start <= a_end + slack


@dataclass(frozen=True, slots=True)
class Methodology:
    """One immutable methodology version, e.g. `bj-green-life@2023`.

    It is in force from `effective_from` (inclusive) until `effective_until` (inclusive) if
    set, and until a later version of the same id takes effect (see `Registry.in_force`).
    """

    id: str
    version: str
    title: str
    scope: str
    status: str
    source: str
    effective_from: date
    effective_from_source: str
    timezone: str
    behaviours: Mapping[str, Behaviour] = field(hash=False)
    evidence: Mapping[str, EvidenceLevel] = field(hash=False)
    points: PointsRule
    duplicates: DuplicateRule
    effective_until: date | None = None
    notes: tuple[str, ...] = ()
    # How many days after an act a partner may still claim it (the credit gate's window);
    # a carbonbook default where the scheme publishes none.
    claim_window_days: int = 30

    def __post_init__(self) -> None:
        object.__setattr__(self, "behaviours", _frozen(self.behaviours))
        object.__setattr__(self, "evidence", _frozen(self.evidence))

    @property
    def ref(self) -> str:
        """`ID@VERSION`, the name every record cites."""
        return f"{self.id}@{self.version}"

    @property
    def grams_per_point(self) -> Decimal:
        """Grams of a day's total per point (the points rule)."""
        return self.points.grams_per_point

    @property
    def cross_platform_window_minutes(self) -> int:
        """Minutes within which two platforms' reports of one act are one act."""
        return self.duplicates.window_minutes

    @property
    def evidence_weights(self) -> Mapping[str, Decimal]:
        """Weight per evidence level."""
        return MappingProxyType({k: v.weight for k, v in self.evidence.items()})

    def behaviour(self, code: str) -> Behaviour:
        """The behaviour `code`.

        Raises:
            UnknownBehaviourError: the version does not cover it (the message names the ones
                it does).
        """
        found = self.behaviours.get(code)
        if found is None:
            known = ", ".join(sorted(self.behaviours))
            raise errors.UnknownBehaviourError(
                f"{self.ref} does not cover behaviour {code!r} (it covers: {known})",
                f"{self.ref} 不包含行为 {code!r}（包含：{known}）",
                methodology=self.ref,
                behaviour=code,
            )
        return found

    def in_force_on(self, day: date) -> bool:
        """Whether `day` lies in this version's own validity (ignores later versions)."""
        if day < self.effective_from:
            return False
        return self.effective_until is None or day <= self.effective_until

    def quantify(
        self, code: str, quantity: Decimal, unit: str, evidence: str = DEFAULT_EVIDENCE
    ) -> int:
        """Milligrams of CO2e for one event (see `quantify.quantify`, which this wraps).

        Raises:
            QuantifyError: the first rule the event breaks, with its code.
        """
        from carbonbook.methodology.quantify import quantify  # noqa: PLC0415 - quantify imports this module

        return quantify(self, code, quantity, unit, evidence).reduction_mg

    def points_for_day(self, day_total_mg: int) -> int:
        """Points for a person's daily total: one per `grams_per_point`, rounded half-up."""
        return self.points.points(day_total_mg)


@dataclass(frozen=True, slots=True)
class Quantified:
    """One act turned into milligrams under one methodology version.

    `factor_g_per_unit` is the factor actually applied (after the evidence weight);
    `quantity`, `unit`, `behaviour` and `evidence` are kept so the record can be
    re-quantified under another methodology.
    """

    methodology: str
    behaviour: str
    quantity: Decimal
    unit: str
    evidence: str
    factor_g_per_unit: Decimal
    reduction_mg: int

    @property
    def factor_id(self) -> str:
        """Which factor was used: `ID@VERSION/behaviour/evidence`."""
        return f"{self.methodology}/{self.behaviour}/{self.evidence}"

    @property
    def grams_text(self) -> str:
        """The reduction in grams with two decimals ("625.00")."""
        return mg_to_grams_text(self.reduction_mg)
