"""What-if (减排情景): the effect of a reduction project on a report's emissions, and what it
is worth at a market price. Pure.

A scenario is a list of changes to the report's inputs, each naming a field by path and
either scaling it (`"scale": "0.4"`: the bus group's diesel cut to 40 %) or setting it
(`"value": "47350"`: purchased power after a steel works' own generation covers 52.65 %).
Both the report and the changed report are computed in full, so the answer carries the
lineage of both.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from carbonbook.mrv.errors import InvalidReportError, Problem
from carbonbook.mrv.model import ReportResult, compute
from carbonbook.numbers import D, NotADecimalError, fraction_text

if TYPE_CHECKING:
    from fractions import Fraction

_STEP = re.compile(r"^(?P<key>[a-z_]+)(?:\[(?P<index>\d{1,4})\])?$")
MAX_CHANGES = 50


@dataclass(frozen=True, slots=True)
class WhatIf:
    before: ReportResult
    after: ReportResult

    def delta(self, boundary: str) -> Fraction:
        """Change in emissions within the boundary ("direct" or "total"), negative = less."""
        if boundary == "direct":
            return self.after.direct - self.before.direct
        return self.after.total_tco2 - self.before.total_tco2

    def to_document(
        self, *, boundary: str = "direct", price_fen: int | None = None
    ) -> dict[str, Any]:
        delta = self.delta(boundary)
        # Obligations are whole tonnes: the saving is the difference of the rounded figures.
        before_t = _whole(self.before.direct if boundary == "direct" else self.before.total_tco2)
        after_t = _whole(self.after.direct if boundary == "direct" else self.after.total_tco2)
        return {
            "boundary": boundary,
            "before": _totals(self.before),
            "after": _totals(self.after),
            "delta_tco2": fraction_text(delta),
            "obligation_before_t": before_t,
            "obligation_after_t": after_t,
            "obligation_delta_t": after_t - before_t,
            "price_fen": price_fen,
            # What the change is worth at the price: allowances no longer needed (or needed).
            "value_fen": None if price_fen is None else (before_t - after_t) * price_fen,
        }


def what_if(document: dict[str, Any], changes: list[dict[str, Any]]) -> WhatIf:
    """Compute the report and the report with `changes` applied.

    Raises:
        InvalidReportError: a change naming no field, a bad scale or value, or a changed
            report that no longer computes; every problem names its path.
    """
    before = compute(document)
    changed = apply(document, changes)
    try:
        after = compute(changed)
    except InvalidReportError as exc:
        raise InvalidReportError(
            [Problem(f"scenario: {p.path}", p.message, p.message_zh) for p in exc.problems]
        ) from None
    return WhatIf(before, after)


def apply(document: dict[str, Any], changes: list[dict[str, Any]]) -> dict[str, Any]:
    """A copy of the document with every change applied (the original is untouched)."""
    if not isinstance(changes, list) or not 1 <= len(changes) <= MAX_CHANGES:
        raise InvalidReportError(
            [
                Problem(
                    "changes",
                    f"give 1 to {MAX_CHANGES} changes",
                    f"请提供 1 至 {MAX_CHANGES} 项变更",
                )
            ]
        )
    changed = copy.deepcopy(document)
    problems: list[Problem] = []
    for i, change in enumerate(changes):
        where = f"changes[{i}]"
        try:
            _apply_one(changed, change, where)
        except _BadChangeError as bad:
            problems.append(Problem(bad.path, bad.message, bad.message_zh))
    if problems:
        raise InvalidReportError(problems)
    return changed


class _BadChangeError(Exception):
    def __init__(self, path: str, message: str, message_zh: str) -> None:
        super().__init__(message)
        self.path, self.message, self.message_zh = path, message, message_zh


def _apply_one(document: dict[str, Any], change: Any, where: str) -> None:
    if not isinstance(change, dict) or not isinstance(change.get("path"), str):
        raise _BadChangeError(where, "must be an object with a path", "必须是包含 path 的对象")
    path = change["path"]
    holder, key = _locate(document, path, where)
    if ("scale" in change) == ("value" in change):
        raise _BadChangeError(where, "give either scale or value", "scale 与 value 须二选一")
    if "value" in change:
        value = _decimal(change["value"], f"{where}.value")
        holder[key] = str(value)
        return
    scale = _decimal(change["scale"], f"{where}.scale")
    current = _decimal(holder.get(key), f"{where}.path ({path})")
    holder[key] = str(current * scale)


def _locate(document: dict[str, Any], path: str, where: str) -> tuple[dict[str, Any], str]:
    steps = path.split(".")
    node: Any = document
    for step in steps[:-1]:
        m = _STEP.match(step)
        if m is None or not isinstance(node, dict) or m["key"] not in node:
            raise _BadChangeError(
                f"{where}.path",
                f"{path!r} names no field of the report",
                f"{path!r} 不是报告中的字段",
            )
        node = node[m["key"]]
        if m["index"] is not None:
            if not isinstance(node, list) or int(m["index"]) >= len(node):
                raise _BadChangeError(
                    f"{where}.path", f"{path!r}: no such line", f"{path!r}：没有这一行"
                )
            node = node[int(m["index"])]
    last = steps[-1]
    if not isinstance(node, dict) or _STEP.match(last) is None or last not in node:
        raise _BadChangeError(
            f"{where}.path", f"{path!r} names no field of the report", f"{path!r} 不是报告中的字段"
        )
    return node, last


def _decimal(value: Any, path: str) -> Decimal:
    if not isinstance(value, str):
        raise _BadChangeError(
            path, f"a decimal written as a string, got {value!r}", "必须是字符串形式的十进制数"
        )
    try:
        number = D(value)
    except NotADecimalError as exc:  # not a number, or out of bounds (numbers.bounded)
        raise _BadChangeError(path, str(exc), exc.message_zh) from None
    if number < 0:
        raise _BadChangeError(path, f"{value} is negative", f"{value} 为负数")
    return number


def _whole(value: Fraction) -> int:
    return int(Decimal(fraction_text(value)).to_integral_value(ROUND_HALF_UP))


def _totals(result: ReportResult) -> dict[str, str]:
    return {
        "direct_tco2": fraction_text(result.direct),
        "indirect_tco2": fraction_text(result.indirect),
        "total_tco2": fraction_text(result.total_tco2),
    }
