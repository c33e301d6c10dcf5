"""Market data over the exchange's tables: the daily statistics of an instrument, and the
newest trades since a cursor (what the live feed streams)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from carbonbook.db.engine import reading
from carbonbook.db.schema import exchange_orders, exchange_trades
from carbonbook.market_data.daily import Tick, cumulative, daily


class MarketData:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def statistics(
        self, market: str, instrument: str, *, open_rule: str, reference_fen: int
    ) -> dict[str, Any]:
        with reading(self.engine) as conn:
            ticks = [
                Tick(r.day, r.price_fen, r.quantity, r.mode)
                for r in conn.execute(
                    sa.select(
                        exchange_trades.c.day,
                        exchange_trades.c.price_fen,
                        exchange_trades.c.quantity,
                        exchange_trades.c.mode,
                    )
                    .where(
                        exchange_trades.c.market == market,
                        exchange_trades.c.instrument == instrument,
                    )
                    .order_by(exchange_trades.c.id)
                )
            ]
            listings: dict[str, int] = dict(
                conn.execute(
                    sa.select(exchange_orders.c.day, sa.func.count())
                    .where(
                        exchange_orders.c.market == market,
                        exchange_orders.c.instrument == instrument,
                        exchange_orders.c.mode == "listing",  # a take-up (摘牌) lists nothing
                    )
                    .group_by(exchange_orders.c.day)
                ).all()
            )
        days = daily(ticks, listings, open_rule=open_rule, reference_fen=reference_fen)
        return {
            "market": market,
            "instrument": instrument,
            "days": [d.to_document() for d in days],
            "cumulative": cumulative(days),
        }

    def trades_after(self, market: str, instrument: str, after_id: int) -> list[dict[str, Any]]:
        """Trades with an id above `after_id`, oldest first (ids increase with time)."""
        with reading(self.engine) as conn:
            rows = conn.execute(
                sa.select(
                    exchange_trades.c.id,
                    exchange_trades.c.price_fen,
                    exchange_trades.c.quantity,
                    exchange_trades.c.mode,
                    exchange_trades.c.at,
                )
                .where(
                    exchange_trades.c.market == market,
                    exchange_trades.c.instrument == instrument,
                    exchange_trades.c.id > after_id,
                )
                .order_by(exchange_trades.c.id)
                .limit(200)
            )
            return [
                {
                    "id": r.id,
                    "price_fen": r.price_fen,
                    "quantity": r.quantity,
                    "mode": r.mode,
                    "at_us": r.at,
                }
                for r in rows
            ]
