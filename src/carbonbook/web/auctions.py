"""One-sided bidding (单向竞价) pages: the announced lots with their window, reserve and
pricing; a seller announces a lot, members bid (each form carries the key it was rendered
with, so a double click bids once), the exchange's operator closes a lot after its window and
the allocation shows with the clearing price and each bidder's result. Every action goes
through the same `Auctions` as the API."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from carbonbook.api.deps import context
from carbonbook.api.routes.exchange import price_fen
from carbonbook.errors import DomainError
from carbonbook.exchange.auctions import clearing_fen
from carbonbook.exchange.errors import OrderRefusedError
from carbonbook.exchange.markets import SHANGHAI, load_markets
from carbonbook.identity.model import Permission, User
from carbonbook.numbers import fen_to_yuan_text
from carbonbook.web.labels import N_
from carbonbook.web.pages import (
    CSRF_FAILED,
    Notice,
    csrf_ok,
    error_page,
    form_user,
    page_user,
    render,
)

if TYPE_CHECKING:
    from carbonbook.exchange.auctions import Auction, BidRecord

router = APIRouter(include_in_schema=False)

# Codes the page prints through the `label` filter (see labels.py).
CODES = (
    N_("open"),
    N_("closed"),
    N_("pay_as_bid"),
    N_("uniform"),
    N_("live"),
    N_("won"),
    N_("lost"),
)

BIDDERS_ONLY = Notice(
    "FORBIDDEN",
    "Only an enterprise, an exchange member or the exchange's operator sees the auctions.",
    "只有控排企业、交易会员或交易所运营人员可以查看竞价。",
)
OPERATOR_ONLY = Notice(
    "FORBIDDEN", "Only the exchange's operator closes a lot.", "只有交易所运营人员可以结束竞价。"
)
WINDOW_FORMAT = "%Y-%m-%dT%H:%M"  # <input type="datetime-local">, read in Asia/Shanghai


def _visitor(request: Request) -> User | Response:
    return page_user(
        request,
        lambda u: u.can(Permission.HOLD_UNITS) or u.can(Permission.RUN_EXCHANGE),
        BIDDERS_ONLY,
    )


def _trader(request: Request) -> User | Response:
    return page_user(request, lambda u: u.can(Permission.HOLD_UNITS), BIDDERS_ONLY)


def _moment(text: str, field: str) -> datetime:
    try:
        return datetime.strptime(text.strip(), WINDOW_FORMAT).replace(tzinfo=SHANGHAI)
    except ValueError:
        raise OrderRefusedError(
            "BAD_WINDOW",
            f"{field}: {text!r} is not a date and time (YYYY-MM-DDTHH:MM, Beijing time)",
            f"{field}：{text!r} 不是有效的日期时间（北京时间）",
        ) from None


@router.get("/exchange/auctions", response_class=HTMLResponse, response_model=None)
def lots(request: Request) -> Response:
    found = _visitor(request)
    if not isinstance(found, User):
        return found
    return _page(request, found)


@router.post("/exchange/auctions", response_class=HTMLResponse, response_model=None)
def announce(
    request: Request,
    lot: Annotated[str, Form(max_length=61)] = "",
    quantity: Annotated[str, Form(max_length=12)] = "",
    reserve: Annotated[str, Form(max_length=16)] = "",
    pricing: Annotated[str, Form(max_length=12)] = "",
    opens_at: Annotated[str, Form(max_length=20)] = "",
    closes_at: Annotated[str, Form(max_length=20)] = "",
    key: Annotated[str, Form(max_length=100)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """A seller announces a lot: `lot` is "market/instrument"; its units are reserved."""
    found = form_user(request, csrf, _trader)
    if not isinstance(found, User):
        return found
    market_id, _, instrument = lot.partition("/")
    try:
        context(request).auctions.announce(
            seller=found.owner,
            market_id=market_id,
            instrument=instrument,
            quantity=int(quantity) if quantity.strip().isdigit() else 0,
            reserve_fen=price_fen(reserve.strip()),
            pricing=pricing,
            opens_at=_moment(opens_at, "opens_at"),
            closes_at=_moment(closes_at, "closes_at"),
            key=key,
            by=found.username,
        )
    except DomainError as exc:
        return _page(request, found, notice=Notice.of(exc), status=exc.http_status)
    return RedirectResponse("/exchange/auctions", status_code=303)


@router.post(
    "/exchange/auctions/{auction_id}/bids", response_class=HTMLResponse, response_model=None
)
def bid(
    request: Request,
    auction_id: int,
    price: Annotated[str, Form(max_length=16)] = "",
    quantity: Annotated[str, Form(max_length=12)] = "",
    key: Annotated[str, Form(max_length=100)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """A bid with the key its form was rendered with: a double click bids once."""
    found = form_user(request, csrf, _trader)
    if not isinstance(found, User):
        return found
    try:
        context(request).auctions.bid(
            bidder=found.owner,
            auction_id=auction_id,
            price_fen=price_fen(price.strip()),
            quantity=int(quantity) if quantity.strip().isdigit() else 0,
            key=key,
            by=found.username,
        )
    except DomainError as exc:
        return _page(request, found, notice=Notice.of(exc), status=exc.http_status)
    return RedirectResponse(f"/exchange/auctions#lot-{auction_id}", status_code=303)


@router.post(
    "/exchange/auctions/{auction_id}/close", response_class=HTMLResponse, response_model=None
)
def close(
    request: Request, auction_id: int, csrf: Annotated[str, Form(max_length=100)] = ""
) -> Response:
    """The operator closes a lot after its window: allocation and settlement in one batch."""
    if not csrf_ok(request, csrf):
        return error_page(request, 403, CSRF_FAILED)
    found = page_user(request, lambda u: u.can(Permission.RUN_EXCHANGE), OPERATOR_ONLY)
    if not isinstance(found, User):
        return found
    try:
        context(request).auctions.close(auction_id, by=found.username)
    except DomainError as exc:
        return _page(request, found, notice=Notice.of(exc), status=exc.http_status)
    return RedirectResponse(f"/exchange/auctions#lot-{auction_id}", status_code=303)


def _visible(user: User, auction: Auction, bids: list[BidRecord]) -> list[BidRecord]:
    """Bids are sealed until the close: a bidder sees its own, the operator all of them.
    After the close the allocation is published."""
    if auction.state == "closed" or user.can(Permission.RUN_EXCHANGE):
        return bids
    return [b for b in bids if b.bidder == user.owner]


def _page(
    request: Request, user: User, *, notice: Notice | None = None, status: int = 200
) -> HTMLResponse:
    auctions = context(request).auctions
    now = auctions.clock()
    now_us = int(now.timestamp() * 1_000_000)
    rows = []
    for auction in auctions.auctions():
        bids = auctions.bids(auction.id)
        rows.append(
            {
                "lot": auction,
                "bids": _visible(user, auction, bids),
                "clearing_fen": clearing_fen(bids) if auction.state == "closed" else None,
                "biddable": auction.state == "open"
                and auction.opens_at <= now_us < auction.closes_at
                and auction.seller != user.owner
                and user.can(Permission.HOLD_UNITS),
                "closable": auction.state == "open"
                and now_us >= auction.closes_at
                and user.can(Permission.RUN_EXCHANGE),
            }
        )
    local = now.astimezone(SHANGHAI)
    return render(
        request,
        "auctions.html",
        user=user,
        rows=rows,
        markets=load_markets(),
        trader=user.can(Permission.HOLD_UNITS),
        operator=user.can(Permission.RUN_EXCHANGE),
        opens_default=local.strftime(WINDOW_FORMAT),
        closes_default=(local + timedelta(hours=1)).strftime(WINDOW_FORMAT),
        announce_key=secrets.token_urlsafe(12),
        bid_key=secrets.token_urlsafe(12),
        yuan=fen_to_yuan_text,
        notice=notice,
        status=status,
    )
