"""The trading hall (交易大厅): the book's depth, the latest trades, placing and cancelling
listing orders, taking up a listing (摘牌), my orders, block trades. Every order goes through
the same `Exchange` as the API. One-sided bidding has its own page (`web/auctions.py`)."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from carbonbook.api.deps import context
from carbonbook.api.routes.exchange import price_fen
from carbonbook.errors import DomainError
from carbonbook.exchange.markets import load_markets
from carbonbook.identity.model import Permission, User
from carbonbook.market_data.service import MarketData
from carbonbook.numbers import fen_to_yuan_text
from carbonbook.web.pages import (
    Notice,
    error_page,
    form_user,
    page_user,
    render,
    viewer,
)

router = APIRouter(include_in_schema=False)

TRADERS_ONLY = Notice(
    "FORBIDDEN",
    "Only an enterprise or an exchange member trades.",
    "只有控排企业或交易会员可以交易。",
)


def _trader(request: Request) -> User | Response:
    return page_user(request, lambda user: user.can(Permission.HOLD_UNITS), TRADERS_ONLY)


@router.get("/exchange", response_class=HTMLResponse, response_model=None)
def hall(request: Request, market: str = "", instrument: str = "") -> Response:
    found = _trader(request)
    if not isinstance(found, User):
        return found
    return _page(request, found, market, instrument)


@router.post("/exchange/orders", response_class=HTMLResponse, response_model=None)
def place(
    request: Request,
    market: Annotated[str, Form(max_length=20)] = "",
    instrument: Annotated[str, Form(max_length=40)] = "",
    side: Annotated[str, Form(max_length=4)] = "",
    price: Annotated[str, Form(max_length=16)] = "",
    quantity: Annotated[str, Form(max_length=12)] = "",
    key: Annotated[str, Form(max_length=100)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Place with the key the page was rendered with: a double click places once."""
    found = form_user(request, csrf, _trader)
    if not isinstance(found, User):
        return found
    user = found
    try:
        qty = int(quantity) if quantity.strip().isdigit() else 0
        context(request).exchange.place(
            owner=user.owner,
            market_id=market,
            instrument=instrument,
            side=side,
            price_fen=price_fen(price.strip()),
            quantity=qty,
            key=key,
            by=user.username,
        )
    except DomainError as exc:
        notice = Notice.of(exc)
        return _page(request, user, market, instrument, notice=notice, status=exc.http_status)
    return RedirectResponse(f"/exchange?market={market}&instrument={instrument}", status_code=303)


@router.post("/exchange/listings/{order_id}/take", response_class=HTMLResponse, response_model=None)
def take_up(
    request: Request,
    order_id: int,
    market: Annotated[str, Form(max_length=20)] = "",
    instrument: Annotated[str, Form(max_length=40)] = "",
    quantity: Annotated[str, Form(max_length=12)] = "",
    key: Annotated[str, Form(max_length=100)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """摘牌: take up one listing of the book, with the key its row was rendered with."""
    found = form_user(request, csrf, _trader)
    if not isinstance(found, User):
        return found
    try:
        context(request).exchange.take_up(
            owner=found.owner,
            listing_id=order_id,
            quantity=int(quantity) if quantity.strip().isdigit() else 0,
            key=key,
            by=found.username,
        )
    except DomainError as exc:
        notice = Notice.of(exc)
        return _page(request, found, market, instrument, notice=notice, status=exc.http_status)
    return RedirectResponse(f"/exchange?market={market}&instrument={instrument}", status_code=303)


@router.post("/exchange/orders/{order_id}/cancel", response_class=HTMLResponse, response_model=None)
def cancel(
    request: Request, order_id: int, csrf: Annotated[str, Form(max_length=100)] = ""
) -> Response:
    found = form_user(request, csrf, _trader)
    if not isinstance(found, User):
        return found
    try:
        order = context(request).exchange.cancel(
            owner=found.owner, order_id=order_id, by=found.username
        )
    except DomainError as exc:
        notice = Notice.of(exc)
        return _page(request, found, "", "", notice=notice, status=exc.http_status)
    return RedirectResponse(
        f"/exchange?market={order.market}&instrument={order.instrument}", status_code=303
    )


@router.post("/exchange/blocks", response_class=HTMLResponse, response_model=None)
def report_block(
    request: Request,
    market: Annotated[str, Form(max_length=20)] = "",
    instrument: Annotated[str, Form(max_length=40)] = "",
    side: Annotated[str, Form(max_length=4)] = "",
    counterparty: Annotated[str, Form(max_length=120)] = "",
    price: Annotated[str, Form(max_length=16)] = "",
    quantity: Annotated[str, Form(max_length=12)] = "",
    key: Annotated[str, Form(max_length=100)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Report a block agreement trade (大宗协议); the counterparty confirms it here too."""
    found = form_user(request, csrf, _trader)
    if not isinstance(found, User):
        return found
    try:
        context(request).exchange.report_block(
            owner=found.owner,
            market_id=market,
            instrument=instrument,
            side=side,
            counterparty=counterparty.strip(),
            price_fen=price_fen(price.strip()),
            quantity=int(quantity) if quantity.strip().isdigit() else 0,
            key=key,
            by=found.username,
        )
    except DomainError as exc:
        notice = Notice.of(exc)
        return _page(request, found, market, instrument, notice=notice, status=exc.http_status)
    return RedirectResponse(f"/exchange?market={market}&instrument={instrument}#blocks", 303)


@router.post(
    "/exchange/blocks/{block_id}/{action}", response_class=HTMLResponse, response_model=None
)
def decide_block(
    request: Request,
    block_id: int,
    action: str,
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    found = form_user(request, csrf, _trader)
    if not isinstance(found, User):
        return found
    exchange = context(request).exchange
    actions = {"confirm": exchange.confirm_block, "decline": exchange.decline_block}
    if action not in actions:
        return error_page(request, 404)
    try:
        done = actions[action](owner=found.owner, block_id=block_id, by=found.username)
    except DomainError as exc:
        notice = Notice.of(exc)
        return _page(request, found, "", "", notice=notice, status=exc.http_status)
    return RedirectResponse(
        f"/exchange?market={done.market}&instrument={done.instrument}#blocks", 303
    )


@router.get("/market", response_class=HTMLResponse, response_model=None)
def statistics(request: Request, market: str = "national", instrument: str = "") -> Response:
    """Market statistics (行情统计), public: price and volume by day, listing against block."""
    markets = load_markets()
    rules = markets.get(market) or markets["national"]
    if instrument not in rules.instruments:
        instrument = rules.instruments[0]
    ctx = context(request)
    stats = MarketData(ctx.engine).statistics(
        rules.id, instrument, open_rule=rules.open_rule, reference_fen=rules.reference_fen
    )
    chart = {
        "days": [d["day"] for d in stats["days"]],
        "close": [d["close_fen"] / 100 for d in stats["days"]],
        "listing": [d["volume_t"]["listing"] for d in stats["days"]],
        "block": [d["volume_t"]["block"] for d in stats["days"]],
    }
    return render(
        request,
        "market.html",
        user=viewer(request, ctx),
        markets=markets,
        market=rules,
        instrument=instrument,
        stats=stats,
        chart=chart,
        yuan=fen_to_yuan_text,
    )


def _page(
    request: Request,
    user: User,
    market_id: str,
    instrument: str,
    *,
    notice: Notice | None = None,
    status: int = 200,
) -> HTMLResponse:
    exchange = context(request).exchange
    markets = load_markets()
    if market_id not in markets:
        now = exchange.clock()
        market_id = next((m.id for m in markets.values() if m.is_open(now)), "national")
    rules = markets[market_id]
    if instrument not in rules.instruments:
        instrument = rules.instruments[0]
    depth = exchange.depth(market_id, instrument)
    return render(
        request,
        "exchange.html",
        user=user,
        markets=markets,
        market=rules,
        instrument=instrument,
        is_open=rules.is_open(exchange.clock()),
        asks=list(reversed(depth["asks"])),
        listings=exchange.listings(market_id, instrument),
        take_key=secrets.token_urlsafe(12),
        bids=depth["bids"],
        reference=depth["reference_fen"],
        band=depth["band_fen"],
        # Members see their own side of a trade and no counterparty (as over the API).
        trades=[
            t.to_document(None if _staff(user) else user.owner)
            for t in exchange.trades(market_id, instrument, limit=20)
        ],
        orders=exchange.orders(user.owner, limit=30),
        blocks=exchange.blocks(user.owner, limit=20),
        block_key=secrets.token_urlsafe(12),
        key=secrets.token_urlsafe(12),
        yuan=fen_to_yuan_text,
        notice=notice,
        status=status,
    )


def _staff(user: User) -> bool:
    """The exchange's operators and the regulator see both parties of every trade."""
    return user.can(Permission.RUN_EXCHANGE) or user.can(Permission.REGULATE_REGISTRY)
