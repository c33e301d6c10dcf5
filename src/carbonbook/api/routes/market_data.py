"""Market data over HTTP: daily statistics (public), and a live feed of trades and the book
as server-sent events."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import StreamingResponse

from carbonbook.api.deps import Ctx
from carbonbook.api.errors import ApiError
from carbonbook.exchange.markets import market as market_rules
from carbonbook.exchange.service import listed
from carbonbook.market_data.service import MarketData

router = APIRouter(tags=["market data"])
MarketId = Annotated[str, Path(min_length=1, max_length=20, examples=["national"])]
Instrument = Annotated[str, Path(min_length=1, max_length=40, examples=["CEA-2024"])]
POLL_SECONDS = 1.0
MAX_EVENT_ID = 2**63 - 1  # trade ids are BIGINT


def _last_event_id(header: str, after: int) -> int:
    """The trade id a reconnecting client last saw: the header when it sends one (a trade id
    within BIGINT, as the stream wrote it), else `after`."""
    if not header:
        return after
    digits = header.isascii() and header.isdigit() and len(header) <= 19
    if not (digits and int(header) <= MAX_EVENT_ID):
        raise ApiError(
            422,
            "BAD_LAST_EVENT_ID",
            f"Last-Event-ID must be a trade id from 0 to {MAX_EVENT_ID}",
            f"Last-Event-ID 须为 0 至 {MAX_EVENT_ID} 之间的成交编号",
        )
    return int(header)


@router.get("/market-data/{market}/{instrument}/daily", summary="Daily statistics (public)")
def daily(market: MarketId, instrument: Instrument, ctx: Ctx) -> dict[str, Any]:
    """Per day: open by the market's rule, high, low, close (the online VWAP), VWAP, volume
    and turnover by mode, deals and listings; and the cumulative figures."""
    rules = market_rules(market)
    listed(rules, instrument)
    return MarketData(ctx.engine).statistics(
        market, instrument, open_rule=rules.open_rule, reference_fen=rules.reference_fen
    )


@router.get(
    "/market-data/{market}/{instrument}/stream",
    summary="Live trades and book (server-sent events)",
    response_class=StreamingResponse,
)
async def stream(
    market: MarketId,
    instrument: Instrument,
    request: Request,
    ctx: Ctx,
    after: Annotated[int, Query(ge=0, le=2**63 - 1, description="last trade id seen")] = 0,
    max_seconds: Annotated[int, Query(ge=1, le=3600)] = 600,
) -> StreamingResponse:
    """`trade` events for each new trade and a `book` event whenever the depth changes; a
    reconnecting client passes the last trade id it saw (or the Last-Event-ID header)."""
    rules = market_rules(market)
    listed(rules, instrument)
    cursor = _last_event_id(request.headers.get("last-event-id", ""), after)
    data = MarketData(ctx.engine)

    async def events() -> AsyncIterator[str]:
        nonlocal cursor
        book: Any = None
        deadline = time.monotonic() + max_seconds
        yield "retry: 2000\n\n"
        while time.monotonic() < deadline:
            for trade in await asyncio.to_thread(data.trades_after, market, instrument, cursor):
                cursor = trade["id"]
                yield f"id: {cursor}\nevent: trade\ndata: {json.dumps(trade)}\n\n"
            depth = await asyncio.to_thread(ctx.exchange.depth, market, instrument)
            if depth != book:
                book = depth
                yield f"event: book\ndata: {json.dumps(depth)}\n\n"
            if await request.is_disconnected():
                return
            await asyncio.sleep(POLL_SECONDS)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
