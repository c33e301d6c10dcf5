"""The methodology explainer (方法学说明), public: "why is my 2.5 km worth 625 g here and 835 g
there?" Every methodology version that covers a behaviour quantifies the same act side by
side, with its factor, its source, its baseline and its daily cap."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from carbonbook.api.deps import context
from carbonbook.errors import DomainError
from carbonbook.methodology.quantify import quantify
from carbonbook.methodology.registry import all_methodologies
from carbonbook.numbers import D, NotADecimalError
from carbonbook.web.pages import render, viewer

router = APIRouter(include_in_schema=False)


def _behaviours() -> list[str]:
    codes = {code for m in all_methodologies().values() for code in m.behaviours}
    return sorted(codes)


@router.get("/methodologies", response_class=HTMLResponse)
def explainer(
    request: Request, behaviour: str = "shared_bike", quantity: str = "2.5"
) -> HTMLResponse:
    try:
        amount: Decimal | None = D(quantity.strip()[:20])
    except NotADecimalError:
        amount = None
    rows: list[dict[str, Any]] = []
    for ref, methodology in sorted(all_methodologies().items()):
        known = methodology.behaviours.get(behaviour)
        if known is None:
            continue
        row: dict[str, Any] = {
            "ref": ref,
            "title": methodology.title,
            "unit": known.unit,
            "factor": known.factor_g_per_unit,
            "status": known.factor_status,
            "source": known.factor_source,
            "baseline": known.baseline,
            "cap": known.limits,
            "grams": None,
            "problem": None,
        }
        if amount is not None:
            try:
                result = quantify(methodology, behaviour, amount, known.unit)
                row["grams"] = format((Decimal(result.reduction_mg) / 1000).normalize(), "f")
            except DomainError as exc:
                row["problem"] = {"en": exc.message, "zh": exc.message_zh}
        rows.append(row)
    return render(
        request,
        "methodologies.html",
        user=viewer(request, context(request)),
        behaviours=_behaviours(),
        behaviour=behaviour,
        quantity=quantity if amount is not None else "",
        rows=rows,
    )
