"""Partner platforms send behaviour events; people link platforms (consent)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from carbonbook.api.deps import Ctx, CurrentUser, SignedPartner
from carbonbook.api.errors import ApiError
from carbonbook.api.fields import Text
from carbonbook.identity.model import Role
from carbonbook.methodology.registry import get as get_methodology
from carbonbook.personal.electricity import Meters
from carbonbook.personal.gate import CreditGate, PartnerScope
from carbonbook.personal.service import Personal

router = APIRouter(tags=["personal"])
MAX_EVENTS = 10_000
DEFAULT_METER_METHODOLOGY = "sz-household-electricity@2022"


class EventResult(BaseModel):
    event_id: str | None
    status: str = Field(description="accepted, duplicate, cross_platform_duplicate or rejected")
    code: str | None = None
    grams: str | None = None


class IngestOut(BaseModel):
    methodology: str
    accepted: int
    duplicates: int
    cross_platform_duplicates: int
    rejected: list[dict[str, Any]]
    people: dict[str, dict[str, Any]]
    results: list[EventResult]


class LinkIn(BaseModel):
    platform: Text = Field(min_length=1, max_length=60)


@router.post(
    "/partner/events",
    response_model=IngestOut,
    summary="A partner platform's signed, idempotent batch of behaviour events (up to 10,000)",
)
async def partner_events(
    request: Request,
    partner: SignedPartner,
    ctx: Ctx,
    methodology: Annotated[str | None, Query(max_length=80)] = None,
) -> IngestOut:
    body = await request.body()  # already read and verified by the signature check
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):  # not JSON or UTF-8, a 5,000-digit number, too deep
        raise ApiError(400, "BAD_JSON", "the body is not JSON", "请求体不是 JSON") from None
    events = document.get("events") if isinstance(document, dict) else None
    if not isinstance(events, list):
        raise ApiError(
            422, "BAD_EVENT", 'the body must be {"events": [...]}', '请求体须为 {"events": [...]}'
        )
    if len(events) > MAX_EVENTS:
        raise ApiError(
            413,
            "TOO_MANY_EVENTS",
            f"at most {MAX_EVENTS} events a request",
            f"每次请求最多 {MAX_EVENTS} 条事件",
        )
    # The partner's scope decides the methodology (the operator set it); a request naming
    # another is refused per event by the credit gate, never followed.
    scope = PartnerScope(
        partner.code,
        partner.methodology,
        frozenset(partner.behaviours),
        frozenset(partner.evidence),
    )
    # The ingest is synchronous database work: off the event loop, so other requests go on.
    report = await run_in_threadpool(
        CreditGate(ctx.engine).credit_partner, events, scope, methodology
    )
    document = report.to_document()
    return IngestOut(
        **{k: document[k] for k in IngestOut.model_fields if k != "results"},
        results=[EventResult(**r) for r in report.results],
    )


class ReversalOut(BaseModel):
    reversed: int
    points: int = Field(description="points debited from the people concerned")
    results: list[dict[str, Any]]


@router.post(
    "/partner/reversals",
    response_model=ReversalOut,
    summary="A partner's signed correction: reverse its own credited events (grams and points)",
)
async def partner_reversals(request: Request, partner: SignedPartner, ctx: Ctx) -> ReversalOut:
    document = _json_body(await request.body())
    ids = document.get("event_ids") if isinstance(document, dict) else None
    if (
        not isinstance(ids, list)
        or not ids
        or not all(isinstance(i, str) and 0 < len(i) <= 200 for i in ids)
    ):
        raise ApiError(
            422,
            "BAD_REVERSAL",
            'the body must be {"event_ids": ["...", ...]} of the platform\'s event ids',
            '请求体须为 {"event_ids": [...]}，列出本平台的事件编号',
        )
    if len(ids) > MAX_EVENTS:
        raise ApiError(
            413,
            "TOO_MANY_EVENTS",
            f"at most {MAX_EVENTS} events a request",
            f"每次请求最多 {MAX_EVENTS} 条事件",
        )
    result = await run_in_threadpool(
        CreditGate(ctx.engine).reverse, partner.code, ids, f"partner:{partner.code}"
    )
    return ReversalOut(**result)


@router.post("/me/links", status_code=204, summary="Link a partner platform (record consent)")
def link_platform(body: LinkIn, user: CurrentUser, ctx: Ctx) -> None:
    if user.role is not Role.PERSON:
        raise ApiError(
            403, "FORBIDDEN", "only a person links platforms", "只有个人用户可以关联平台"
        )
    if ctx.identity.partner(body.platform) is None:
        raise ApiError(
            404,
            "UNKNOWN_PLATFORM",
            f"no partner platform {body.platform!r}",
            f"没有合作平台 {body.platform!r}",
        )
    Personal(ctx.engine).link_platform(user.username, body.platform, user.id)


@router.delete("/me/links/{platform}", status_code=204, summary="Revoke a platform link")
def unlink_platform(platform: str, user: CurrentUser, ctx: Ctx) -> None:
    Personal(ctx.engine).unlink_platform(user.username, platform)


class MeterReadingsOut(BaseModel):
    methodology: str
    stored: int
    duplicates: int
    rejected: list[dict[str, Any]]
    days: list[dict[str, Any]]
    people: dict[str, dict[str, Any]]


@router.post(
    "/partner/meter-readings",
    response_model=MeterReadingsOut,
    summary="A utility's signed batch of daily meter readings (家庭节约用电)",
)
async def meter_readings(
    request: Request,
    partner: SignedPartner,
    ctx: Ctx,
    methodology: Annotated[str, Query(max_length=80)] = DEFAULT_METER_METHODOLOGY,
) -> MeterReadingsOut:
    document = _json_body(await request.body())
    readings = document.get("readings") if isinstance(document, dict) else None
    if not isinstance(readings, list):
        raise ApiError(
            422,
            "BAD_READING",
            'the body must be {"readings": [...]}',
            '请求体须为 {"readings": [...]}',
        )
    if len(readings) > MAX_EVENTS:
        raise ApiError(
            413,
            "TOO_MANY_READINGS",
            f"at most {MAX_EVENTS} readings a request",
            f"每次请求最多 {MAX_EVENTS} 条读数",
        )
    report = Meters(ctx.engine).ingest(readings, get_methodology(methodology), partner.code)
    return MeterReadingsOut(**report.to_document())


def _json_body(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # not JSON or UTF-8, a 5,000-digit number, too deep
        raise ApiError(400, "BAD_JSON", "the body is not JSON", "请求体不是 JSON") from None
