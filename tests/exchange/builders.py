"""Small builders for replay files: a market, three accounts, and event helpers."""

from __future__ import annotations

import json
from typing import Any

from carbonbook.exchange.replay import replay

MARKET: dict[str, Any] = {
    "event": "market",
    "id": "N",
    "instrument": "CEA-2024",
    "tick": "0.01",
    "lot": 1,
    "listing_limit_pct": "10",
    "block_limit_pct": "30",
    "block_min_qty": 100000,
    "open_rule": "first_trade",
    "resale_same_day": False,
    "reference_price": "68.00",
}
ACCOUNTS = [
    {"event": "account", "id": "a", "cash": "10000000.00", "units": 200000},
    {"event": "account", "id": "b", "cash": "10000000.00", "units": 200000},
    {"event": "account", "id": "poor", "cash": "100.00", "units": 5},
]
DAY = {"event": "day", "date": "2024-12-02"}
NEXT_DAY = {"event": "day", "date": "2024-12-03"}
CLOSE = {"event": "close"}


def order(order_id: str, account: str, side: str, price: str, qty: int) -> dict[str, Any]:
    return {
        "event": "order",
        "id": order_id,
        "account": account,
        "side": side,
        "price": price,
        "qty": qty,
    }


def block(block_id: str, buyer: str, seller: str, price: str, qty: int) -> dict[str, Any]:
    return {
        "event": "block",
        "id": block_id,
        "buyer": buyer,
        "seller": seller,
        "price": price,
        "qty": qty,
    }


def cancel(order_id: str) -> dict[str, Any]:
    return {"event": "cancel", "id": order_id}


def run(*events: dict[str, Any], **market: Any) -> dict[str, Any]:
    """Replay the market (with `market` overriding its fields), the accounts, then events."""
    lines = [json.dumps({**MARKET, **market}), *(json.dumps(a) for a in ACCOUNTS)]
    lines += [json.dumps(e) for e in events]
    return replay(lines)


def codes(result: dict[str, Any]) -> list[tuple[str, str]]:
    return [(r["id"], r["code"]) for day in result["days"] for r in day["rejected"]]


def trades(result: dict[str, Any]) -> list[tuple[str, ...]]:
    return [
        (t.get("buy") or t["block"], t.get("sell", ""), t["price"], str(t["qty"]))
        for day in result["days"]
        for t in day["trades"]
    ]
