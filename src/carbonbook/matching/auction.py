"""One-sided bidding (单向竞价), pure: a lot announced by one seller, sealed bids in a window,
allocated at the close by price, then time; the announcement names the pricing:

- `pay_as_bid`: every winning bid pays its own price;
- `uniform`: every winning bid pays the lowest accepted price (the clearing price).

The marginal bid may be filled in part. Bids below the reserve price never win (the service
refuses them at submission). Quantities are whole tonnes, prices integer fen.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

Pricing = Literal["pay_as_bid", "uniform"]
PRICINGS: tuple[Pricing, ...] = ("pay_as_bid", "uniform")


class Bid(NamedTuple):
    bid_id: int  # increasing with time: the tie-break
    bidder: str
    price_fen: int
    quantity: int


class Award(NamedTuple):
    bid_id: int
    bidder: str
    quantity: int
    price_fen: int  # what the bidder pays per tonne


def allocate(lot: int, reserve_fen: int, bids: list[Bid], pricing: Pricing) -> list[Award]:
    """The awards, best price first, then earliest; at most `lot` tonnes in all."""
    if pricing not in PRICINGS:
        msg = f"pricing must be one of {PRICINGS}, not {pricing!r}"
        raise ValueError(msg)
    ranked = sorted(
        (b for b in bids if b.price_fen >= reserve_fen and b.quantity > 0),
        key=lambda b: (-b.price_fen, b.bid_id),
    )
    awards: list[Award] = []
    left = lot
    for bid in ranked:
        if left <= 0:
            break
        take = min(left, bid.quantity)
        awards.append(Award(bid.bid_id, bid.bidder, take, bid.price_fen))
        left -= take
    if pricing == "uniform" and awards:
        clearing = awards[-1].price_fen
        awards = [a._replace(price_fen=clearing) for a in awards]
    return awards
