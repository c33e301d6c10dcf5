"""The exchange over HTTP (交易系统): markets as data, listing orders that reserve and settle on
the ledger, cancels, the book's depth and the latest trades."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Response
from pydantic import BaseModel, Field, StrictInt

from carbonbook.api.deps import Ctx, CurrentUser, require
from carbonbook.api.fields import Moment, Text
from carbonbook.exchange.errors import OrderRefusedError, RequestKeyError
from carbonbook.exchange.markets import load_markets
from carbonbook.identity.model import Permission
from carbonbook.numbers import yuan_text_to_fen

router = APIRouter(tags=["exchange"])
# A price in yuan per tonne, at most two decimals (the tick is checked by the market's rules).
Yuan = Annotated[
    str,
    Field(min_length=1, max_length=16, pattern=r"^\d+(\.\d{1,2})?$", examples=["68.00"]),
]
MarketId = Annotated[str, Path(min_length=1, max_length=20, examples=["national"])]
Instrument = Annotated[str, Path(min_length=1, max_length=40, examples=["CEA-2024"])]
# The README's Idempotency-Key header, on every exchange write: a retry with the same key and
# terms returns the first answer; the same key with other terms is KEY_REUSED (409).
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=100,
        pattern=r"^[\x21-\x7e]+$",
        description="idempotency key (or `key` in the body)",
    ),
]
BodyKey = Field(
    default=None,
    min_length=1,
    max_length=100,
    description="idempotency key, when the Idempotency-Key header is not sent",
)


def request_key(header: str | None, body: str | None) -> str:
    """The write's idempotency key: the header's or the body's, the same if both are sent."""
    if header is not None and body is not None and header != body:
        raise RequestKeyError(
            "KEY_MISMATCH",
            "the Idempotency-Key header and the body's key differ",
            "请求头 Idempotency-Key 与请求体中的 key 不一致",
        )
    key = header if header is not None else body
    if key is None:
        raise RequestKeyError(
            "KEY_REQUIRED",
            "send an Idempotency-Key header (or a key in the body)",
            "请提供 Idempotency-Key 请求头（或请求体中的 key）",
        )
    return key


class OrderIn(BaseModel):
    market: str = Field(min_length=1, max_length=20, examples=["national"])
    instrument: str = Field(min_length=1, max_length=40, examples=["CEA-2024"])
    side: Literal["buy", "sell"]
    price: Yuan
    quantity: StrictInt = Field(ge=1, le=10**9, description="whole tonnes")
    key: Text | None = BodyKey


def price_fen(text: str) -> int:
    try:
        return yuan_text_to_fen(text)
    except ValueError:
        raise OrderRefusedError(
            "BAD_TICK", f"{text!r} is not a price in yuan", f"{text!r} 不是以元计的价格"
        ) from None


@router.get("/exchange/markets", summary="Markets and their rules (data, with sources)")
def markets() -> list[dict[str, Any]]:
    return [
        {
            "id": m.id,
            "name": m.name,
            "instruments": list(m.instruments),
            "tick_fen": m.tick_fen,
            "lot_t": m.lot,
            "listing_band": str(m.listing_band),
            "block_band": str(m.block_band),
            "block_min_t": m.block_min_t,
            "open_rule": m.open_rule,
            "resale_same_day": m.resale_same_day,
            "sessions": [
                [a.isoformat("minutes"), b.isoformat("minutes") if b else "24:00"]
                for a, b in m.sessions
            ],
            "source": m.source,
        }
        for m in load_markets().values()
    ]


# `async def` on purpose: the order path is serialised by the exchange's lock and bound by
# the GIL, so a trip to the thread pool and back adds CPU, not concurrency (measured: the
# server's CPU per order fell from 7.9 to 4.3 ms, bench/RESULTS.md). An order holds the
# event loop for its ~3 ms.
@router.post("/exchange/orders", status_code=201, summary="Place a listing order (挂牌)")
async def place(
    body: OrderIn, user: CurrentUser, ctx: Ctx, response: Response, idem: IdempotencyKey = None
) -> dict[str, Any]:
    """Reserves cash (buy: limit x quantity) or units (sell), matches at once, settles each
    fill delivery versus payment. A refusal has the replay's code and changes nothing; a
    retry with the same key returns the first answer (200)."""
    require(user, Permission.HOLD_UNITS)
    placed = ctx.exchange.place(
        owner=user.owner,
        market_id=body.market,
        instrument=body.instrument,
        side=body.side,
        price_fen=price_fen(body.price),
        quantity=body.quantity,
        key=request_key(idem, body.key),
        by=user.username,
    )
    if placed.replayed:
        response.status_code = 200
    return placed.to_document()


class TakeUpIn(BaseModel):
    quantity: StrictInt = Field(
        ge=1, le=10**9, description="whole tonnes, up to what the listing has"
    )
    key: Text | None = BodyKey


@router.post(
    "/exchange/listings/{order_id}/take", status_code=201, summary="Take up a listing (摘牌)"
)
def take_up(
    order_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    body: TakeUpIn,
    user: CurrentUser,
    ctx: Ctx,
    response: Response,
    idem: IdempotencyKey = None,
) -> dict[str, Any]:
    """Trades `quantity` of one named live listing at its price at once, checked, reserved and
    settled like a listing order; the taking order never rests. A refusal has a code and
    changes nothing; a retry with the same key returns the first answer (200)."""
    require(user, Permission.HOLD_UNITS)
    taken = ctx.exchange.take_up(
        owner=user.owner,
        listing_id=order_id,
        quantity=body.quantity,
        key=request_key(idem, body.key),
        by=user.username,
    )
    if taken.replayed:
        response.status_code = 200
    return taken.to_document()


@router.delete("/exchange/orders/{order_id}", summary="Cancel a live order of mine")
def cancel(
    order_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    user: CurrentUser,
    ctx: Ctx,
    idem: IdempotencyKey = None,
) -> dict[str, Any]:
    """With an Idempotency-Key, a retry returns the order as it is now."""
    require(user, Permission.HOLD_UNITS)
    return ctx.exchange.cancel(
        owner=user.owner, order_id=order_id, by=user.username, key=idem
    ).to_document()


@router.get("/exchange/orders", summary="My orders, newest first")
def my_orders(user: CurrentUser, ctx: Ctx) -> list[dict[str, Any]]:
    return [o.to_document() for o in ctx.exchange.orders(user.owner)]


@router.get("/exchange/{market}/{instrument}/depth", summary="The book: five levels a side")
def depth(market: MarketId, instrument: Instrument, user: CurrentUser, ctx: Ctx) -> dict[str, Any]:
    del user
    return ctx.exchange.depth(market, instrument)


@router.get(
    "/exchange/{market}/{instrument}/listings", summary="Resting listings to take up (摘牌)"
)
def listings(
    market: MarketId, instrument: Instrument, user: CurrentUser, ctx: Ctx
) -> list[dict[str, Any]]:
    """Asks then bids, best first, each with whether it is mine (not whose it is)."""
    return [x.to_document(user.owner) for x in ctx.exchange.listings(market, instrument)]


@router.get("/exchange/{market}/{instrument}/trades", summary="The latest trades")
def trades(
    market: MarketId, instrument: Instrument, user: CurrentUser, ctx: Ctx
) -> list[dict[str, Any]]:
    """Members see their own side of a trade and no counterparty; the exchange's operators
    and the regulator see both parties."""
    staff = user.can(Permission.RUN_EXCHANGE) or user.can(Permission.REGULATE_REGISTRY)
    viewer = None if staff else user.owner
    return [t.to_document(viewer) for t in ctx.exchange.trades(market, instrument)]


class BlockIn(BaseModel):
    market: str = Field(min_length=1, max_length=20, examples=["national"])
    instrument: str = Field(min_length=1, max_length=40, examples=["CEA-2024"])
    side: Literal["buy", "sell"]
    counterparty: Text = Field(min_length=1, max_length=120, examples=["member:fund"])
    price: Yuan
    quantity: StrictInt = Field(ge=1, le=10**9, description="whole tonnes, at least the block size")
    key: Text | None = BodyKey


BlockId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.post("/exchange/blocks", status_code=201, summary="Report a block trade (大宗协议)")
def report_block(
    body: BlockIn, user: CurrentUser, ctx: Ctx, idem: IdempotencyKey = None
) -> dict[str, Any]:
    """Reserves the reporter's side until the counterparty confirms or rejects."""
    require(user, Permission.HOLD_UNITS)
    return ctx.exchange.report_block(
        owner=user.owner,
        market_id=body.market,
        instrument=body.instrument,
        side=body.side,
        counterparty=body.counterparty,
        price_fen=price_fen(body.price),
        quantity=body.quantity,
        key=request_key(idem, body.key),
        by=user.username,
    ).to_document()


@router.post("/exchange/blocks/{block_id}/confirm", summary="Confirm (the counterparty)")
def confirm_block(
    block_id: BlockId, user: CurrentUser, ctx: Ctx, idem: IdempotencyKey = None
) -> dict[str, Any]:
    require(user, Permission.HOLD_UNITS)
    return ctx.exchange.confirm_block(
        owner=user.owner, block_id=block_id, by=user.username, key=idem
    ).to_document()


@router.post("/exchange/blocks/{block_id}/decline", summary="Reject, or withdraw one's report")
def decline_block(
    block_id: BlockId, user: CurrentUser, ctx: Ctx, idem: IdempotencyKey = None
) -> dict[str, Any]:
    require(user, Permission.HOLD_UNITS)
    return ctx.exchange.decline_block(
        owner=user.owner, block_id=block_id, by=user.username, key=idem
    ).to_document()


@router.get("/exchange/blocks", summary="My block trades")
def my_blocks(user: CurrentUser, ctx: Ctx) -> list[dict[str, Any]]:
    return [b.to_document() for b in ctx.exchange.blocks(user.owner)]


class AuctionIn(BaseModel):
    market: str = Field(min_length=1, max_length=20, examples=["national"])
    instrument: str = Field(min_length=1, max_length=40, examples=["CEA-2024"])
    quantity: StrictInt = Field(ge=1, le=10**9)
    reserve: Yuan
    pricing: Literal["pay_as_bid", "uniform"]
    opens_at: Moment
    closes_at: Moment
    key: Text | None = BodyKey


class AuctionBidIn(BaseModel):
    price: Yuan
    quantity: StrictInt = Field(ge=1, le=10**9)
    key: Text | None = BodyKey


AuctionId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@router.post("/exchange/auctions", status_code=201, summary="Announce a lot (单向竞价)")
def announce(
    body: AuctionIn, user: CurrentUser, ctx: Ctx, idem: IdempotencyKey = None
) -> dict[str, Any]:
    """The seller's units are reserved; members bid in the window; the close allocates."""
    require(user, Permission.HOLD_UNITS)
    return ctx.auctions.announce(
        seller=user.owner,
        market_id=body.market,
        instrument=body.instrument,
        quantity=body.quantity,
        reserve_fen=price_fen(body.reserve),
        pricing=body.pricing,
        opens_at=_aware(body.opens_at),
        closes_at=_aware(body.closes_at),
        key=request_key(idem, body.key),
        by=user.username,
    ).to_document()


@router.post("/exchange/auctions/{auction_id}/bids", status_code=201, summary="Bid")
def bid(
    auction_id: AuctionId,
    body: AuctionBidIn,
    user: CurrentUser,
    ctx: Ctx,
    idem: IdempotencyKey = None,
) -> dict[str, Any]:
    require(user, Permission.HOLD_UNITS)
    return ctx.auctions.bid(
        bidder=user.owner,
        auction_id=auction_id,
        price_fen=price_fen(body.price),
        quantity=body.quantity,
        key=request_key(idem, body.key),
        by=user.username,
    ).to_document()


@router.post("/exchange/auctions/{auction_id}/close", summary="Close and settle (operator)")
def close(auction_id: AuctionId, user: CurrentUser, ctx: Ctx) -> dict[str, Any]:
    require(user, Permission.RUN_EXCHANGE)  # the exchange's operator (交易所运营)
    auction, bids = ctx.auctions.close(auction_id, by=user.username)
    return {**auction.to_document(), "bids": [b.to_document() for b in bids]}


@router.get("/exchange/auctions", summary="Announced lots")
def auctions(user: CurrentUser, ctx: Ctx) -> list[dict[str, Any]]:
    del user
    return [a.to_document() for a in ctx.auctions.auctions()]
