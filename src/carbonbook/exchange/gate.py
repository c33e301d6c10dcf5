"""The trade gate (交易闸口): the one place a trade is let through and settled.

Every mode executes here: a matched listing fill (挂牌), a take-up (摘牌), an award at an
auction's close (单向竞价) and a confirmed block (大宗协议). At the moment of execution it
checks, whatever the mode: the market's hours and calendar (block trades in the block
session), the price band from THAT day's reference (the listing band, the block band for
blocks), the size, that neither order is from an earlier trading day (stale orders never
fill), the parties' admission where the caller asks, and funds or units (T+1: units bought
today cannot be sold today) for a side not reserved beforehand. Then it posts the trade's
ledger batch with the serial blocks (`Settle`) and writes the trade into the one trades table
that market data, the reference price and the close read. IMPORTANT: no other module posts
a trade settlement; `tests/exchange/test_gate_architecture.py` keeps it so.

Reservations (cash for a bid or buy order, units for a sell order, a lot or a block report)
also take funds and units through here (`reserve`), so the T+1 rule is in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from carbonbook.db.ids import allocate_ids
from carbonbook.db.schema import ONLINE_MODES, accounts, exchange_trades
from carbonbook.exchange.errors import OrderRefusedError
from carbonbook.exchange.markets import SHANGHAI, Market
from carbonbook.ledger import AccountFlags, Batch
from carbonbook.ledger import TransferRequest as T

if TYPE_CHECKING:
    from carbonbook.ledger import Ledger
    from carbonbook.ledger.model import BatchResult

# Posts a batch and moves registry serial blocks with it (asset, from account, to account,
# tonnes) in the caller's transaction: `Registry.settle_in`, wired in by the API layer.
Settle = Callable[
    [sa.Connection, Batch, list[tuple[str, int, int, int]]], tuple["BatchResult", Any]
]
# Admission (the KYC'd trading account, `Members.admit`), in the caller's transaction:
# (connection, owner, market). None: everyone may trade (the pure tests).
Admit = Callable[[sa.Connection, str, Market], None]
CLEARING = "exchange:clearing"  # the exchange's clearing accounts: net to zero after a trade
CASH = "CNY"
PRACTICE_DESK = "exchange:practice"  # issues practice cash and units (模拟交易)
MAX_QTY = 10**9
MODES = ("listing", "auction", "block")

_TRADE_INSERT = exchange_trades.insert()
_BOUGHT_TODAY = sa.select(sa.func.coalesce(sa.func.sum(exchange_trades.c.quantity), 0)).where(
    exchange_trades.c.buyer == sa.bindparam("owner"),
    exchange_trades.c.instrument == sa.bindparam("instrument"),
    exchange_trades.c.day == sa.bindparam("day"),
)


@dataclass(frozen=True, slots=True)
class Deal:
    """One trade asked of the gate. `buy_ref`/`sell_ref` name what traded (orders, a bid
    and its lot, a block); `placed` the trading days the orders were placed on (a fill of an
    order from an earlier day is refused); `admit` the parties to admit again now;
    `unreserved` the sides that were not reserved beforehand, checked for funds or units."""

    mode: str  # listing | auction | block
    instrument: str
    buyer: str
    seller: str
    price_fen: int
    quantity: int
    buy_ref: int
    sell_ref: int
    aggressor: str
    placed: tuple[str, ...] = ()
    admit: tuple[str, ...] = ()
    unreserved: tuple[str, ...] = ()  # "buy" and/or "sell"


@dataclass(frozen=True, slots=True)
class Executed:
    trade_ids: tuple[int, ...]
    batch: BatchResult
    at: int
    day: str


class TradeGate:
    """Checks and settles every trade; reserves funds and units for orders, bids and lots."""

    def __init__(
        self,
        engine: sa.Engine,
        ledger: Ledger,
        *,
        settle: Settle,
        clock: Callable[[], datetime] | None = None,
        admit: Admit | None = None,
    ) -> None:
        self.engine = engine
        self.ledger = ledger
        self.settle = settle
        self.clock = clock or (lambda: datetime.now(UTC))
        self.admit_hook = admit
        self._ids: dict[tuple[str, str, str], int] = {}
        self._refs: dict[tuple[str, str, str], int] = {}

    # -- the clock and the day ---------------------------------------------------------------

    def now_us(self) -> int:
        return int(self.clock().timestamp() * 1_000_000)

    def day(self) -> str:
        """Today's trading day in Asia/Shanghai; the practice market's ends at 24:00 too."""
        return self.clock().astimezone(SHANGHAI).date().isoformat()

    def forget(self) -> None:
        """Drop the caches after a failed transaction (an account opened in it may not exist)."""
        self._ids.clear()

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """A transaction of the caller's; when it fails, the cached account ids go with it."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except BaseException:
            self.forget()
            raise

    # -- the checks ----------------------------------------------------------------------------

    def admit(self, conn: sa.Connection, owner: str, rules: Market) -> None:
        """Admission (the approved trading account); on a practice market an admitted member
        is granted its practice cash and units the first time."""
        if self.admit_hook is not None:
            self.admit_hook(conn, owner, rules)
        if rules.practice:
            self._grant_practice(conn, owner, rules)

    def _grant_practice(self, conn: sa.Connection, owner: str, rules: Market) -> None:
        """Practice cash and units, once per member (the batch key makes a retry a no-op):
        assets of their own, issued by the practice desk, never real money or units."""
        if self.ledger.find_account_in(conn, owner, rules.cash) is not None:
            return
        self.ledger.ensure_assets_in(
            conn,
            [(rules.cash, "fen", "模拟资金 practice cash, in fen")]
            + [(i, "t", f"模拟配额 practice units ({i})") for i in rules.instruments],
        )
        grants = [(rules.cash, rules.grant_fen)] + [
            (i, rules.grant_units) for i in rules.instruments
        ]
        legs = [
            T.move(
                self.account(conn, PRACTICE_DESK, asset, "issuer", AccountFlags.ISSUER),
                self.account(conn, owner, asset),
                asset,
                amount,
                "practice_grant",
            )
            for asset, amount in grants
            if amount > 0
        ]
        if legs:
            self.ledger.post_in(conn, Batch("exchange", f"practice-grant:{rules.id}:{owner}", legs))

    def known(self, conn: sa.Connection, owner: str, rules: Market) -> None:
        """A named counterparty must be one who may trade here (UNKNOWN_COUNTERPARTY)."""
        try:
            if self.admit_hook is not None:
                self.admit_hook(conn, owner, rules)
                return
        except OrderRefusedError as refused:
            raise _unknown(owner, refused.message) from None
        has = conn.execute(sa.select(accounts.c.id).where(accounts.c.owner == owner).limit(1))
        if has.first() is None:
            raise _unknown(owner, "no such member")

    def require_open(self, rules: Market, *, block: bool = False) -> None:
        if not rules.is_open(self.clock(), block=block):
            what = "block trades on " if block else ""
            raise OrderRefusedError(
                "MARKET_CLOSED",
                f"{what}{rules.id} is closed now",
                f"{rules.id} 当前不在{'大宗交易' if block else '交易'}时段",
            )

    def reference(self, conn: sa.Connection, rules: Market, instrument: str) -> int:
        """The previous trading day's volume-weighted online average (listing, take-up and
        auction trades), else the market's reference: blocks are negotiated and do not set
        the band. Fixed for the day, so it is read once a day per instrument."""
        today = self.day()
        cached = self._refs.get((rules.id, instrument, today))
        if cached is None:
            cached = self._reference_of(conn, rules, instrument, today)
            self._refs[(rules.id, instrument, today)] = cached
        return cached

    def band(
        self, conn: sa.Connection, rules: Market, instrument: str, *, block: bool = False
    ) -> tuple[int, int, int]:
        reference = self.reference(conn, rules, instrument)
        low, high = rules.band(reference, block=block)
        return low, high, reference

    def check_band(
        self,
        conn: sa.Connection,
        rules: Market,
        instrument: str,
        price_fen: int,
        *,
        block: bool = False,
    ) -> None:
        low, high, reference = self.band(conn, rules, instrument, block=block)
        if not low <= price_fen <= high:
            share = rules.block_band if block else rules.listing_band
            raise OrderRefusedError(
                "PRICE_LIMIT",
                f"{price_fen / 100:.2f} yuan is outside today's band "
                f"{low / 100:.2f}-{high / 100:.2f} yuan "
                f"(±{share * 100:.0f} % of {reference / 100:.2f})",
                f"价格须在 {low / 100:.2f}-{high / 100:.2f} 元之间"
                f"（今日参考价 {reference / 100:.2f} 元的 ±{share * 100:.0f} %）",
                low_fen=low,
                high_fen=high,
            )

    def check_size(self, rules: Market, mode: str, quantity: int) -> None:
        if not 0 < quantity <= MAX_QTY or quantity % rules.lot:
            raise OrderRefusedError(
                "BAD_LOT",
                f"the quantity must be a positive multiple of {rules.lot} t",
                f"数量须为 {rules.lot} 吨的正整数倍",
            )
        if mode == "block" and quantity < rules.block_min_t:
            raise OrderRefusedError(
                "SIZE_LIMIT",
                f"a block trade is at least {rules.block_min_t:,} t",
                f"大宗协议交易不少于 {rules.block_min_t:,} 吨",
            )
        if mode == "listing" and quantity >= rules.block_min_t:
            raise OrderRefusedError(
                "SIZE_LIMIT",
                f"a listing order must be under {rules.block_min_t:,} t: report a block trade",
                f"挂牌委托须少于 {rules.block_min_t:,} 吨，请申报大宗协议交易",
            )

    def free(self, conn: sa.Connection, rules: Market, owner: str, asset: str) -> tuple[int, int]:
        """(account id, what `owner` may commit of `asset` now): cash available; units
        available less those bought today where same-day resale is not allowed (T+1)."""
        mine = self.ledger.open_account_in(conn, owner, asset)
        free = mine.available
        if asset != rules.cash and not rules.resale_same_day:
            free -= self.bought_today(conn, owner, asset, self.day())
        return mine.id, free

    def bought_today(self, conn: sa.Connection, owner: str, instrument: str, day: str) -> int:
        """Units bought today, in any mode, count against same-day resale (T+1)."""
        params = {"owner": owner, "instrument": instrument, "day": day}
        return int(conn.execute(_BOUGHT_TODAY, params).scalar_one())

    def reserve(
        self,
        conn: sa.Connection,
        rules: Market,
        owner: str,
        asset: str,
        need: int,
        key: str,
        reason: str,
    ) -> int:
        """Reserve `need` of `asset` for an order, bid, lot or block report, after the funds
        or units check (T+1 included); the pending transfer's id."""
        mine, free = self.free(conn, rules, owner, asset)
        if need > free:
            raise short("buy" if asset == rules.cash else "sell", need, free)
        clearing = self.account(conn, CLEARING, asset, "clearing")
        held = self.ledger.post_in(
            conn, Batch("exchange", key, [T.reserve(mine, clearing, asset, need, reason)])
        )
        return held.first_transfer_id

    # -- execution -----------------------------------------------------------------------------

    def execute(
        self,
        conn: sa.Connection,
        rules: Market,
        deals: Sequence[Deal],
        legs: list[T],
        *,
        key: str,
        trade_ids: Sequence[int] | None = None,
    ) -> Executed:
        """Check every deal at this moment, then post `legs` (the caller's reservations
        posted or voided, cash and units crossed) with the serial blocks in one batch, and
        write each deal into the trades table. Refused: nothing is posted or written."""
        today = self.day()
        for deal in deals:
            self._check(conn, rules, deal, today)
        ids = list(trade_ids) if trade_ids is not None else [allocate_ids(conn) for _ in deals]
        # Practice units have no serial numbers in the registry: nothing to move there.
        deliveries = [
            (
                d.instrument,
                self.account(conn, d.seller, d.instrument),
                self.account(conn, d.buyer, d.instrument),
                d.quantity,
            )
            for d in deals
            if not rules.practice
        ]
        result, _ = self.settle(conn, Batch("exchange", key, legs), deliveries)
        at = self.now_us()
        for trade_id, d in zip(ids, deals, strict=True):
            conn.execute(
                _TRADE_INSERT,
                {
                    "id": trade_id,
                    "market": rules.id,
                    "instrument": d.instrument,
                    "buy_order": d.buy_ref,
                    "sell_order": d.sell_ref,
                    "buyer": d.buyer,
                    "seller": d.seller,
                    "price_fen": d.price_fen,
                    "quantity": d.quantity,
                    "aggressor": d.aggressor,
                    "batch_id": result.batch_id,
                    "at": at,
                    "day": today,
                    "mode": d.mode,
                },
            )
        return Executed(tuple(ids), result, at, today)

    def _check(self, conn: sa.Connection, rules: Market, deal: Deal, today: str) -> None:
        if deal.mode not in MODES or deal.instrument not in rules.instruments:
            raise OrderRefusedError(
                "UNKNOWN_INSTRUMENT",
                f"{deal.instrument} does not trade on {rules.id} as {deal.mode}",
                f"{deal.instrument} 不在 {rules.id} 交易",
            )
        if deal.buyer == deal.seller:
            raise OrderRefusedError("SELF_TRADE", "a trade needs two parties", "不能与自己成交")
        if any(day != today for day in deal.placed):
            raise OrderRefusedError(
                "STALE_ORDER",
                f"an order from an earlier trading day cannot trade on {today}",
                f"往日委托不能在 {today} 成交（已于收盘时过期）",
            )
        block = deal.mode == "block"
        self.require_open(rules, block=block)
        self.check_size(rules, deal.mode, deal.quantity)
        self.check_band(conn, rules, deal.instrument, deal.price_fen, block=block)
        for party in deal.admit:
            self.admit(conn, party, rules)
        if "buy" in deal.unreserved:
            _, cash = self.free(conn, rules, deal.buyer, rules.cash)
            if cash < deal.price_fen * deal.quantity:
                raise short("buy", deal.price_fen * deal.quantity, cash)
        if "sell" in deal.unreserved:
            _, units = self.free(conn, rules, deal.seller, deal.instrument)
            if units < deal.quantity:
                raise short("sell", deal.quantity, units)

    # -- accounts and the reference -------------------------------------------------------------

    def account(
        self,
        conn: sa.Connection,
        owner: str,
        asset: str,
        name: str = "main",
        flags: int = AccountFlags.NONE,
    ) -> int:
        """An account's id, cached: ids never change, and the cache is dropped whenever a
        transaction fails (`forget`)."""
        key = (owner, asset, name)
        found = self._ids.get(key)
        if found is None:
            found = self.ledger.open_account_in(conn, owner, asset, name, flags).id
            self._ids[key] = found
        return found

    def _reference_of(self, conn: sa.Connection, rules: Market, instrument: str, today: str) -> int:
        online = (
            exchange_trades.c.market == rules.id,
            exchange_trades.c.instrument == instrument,
            exchange_trades.c.mode.in_(ONLINE_MODES),
        )
        last_day = conn.execute(
            sa.select(sa.func.max(exchange_trades.c.day)).where(
                *online, exchange_trades.c.day < today
            )
        ).scalar()
        if last_day is None:
            return rules.reference_fen
        turnover, volume = conn.execute(
            sa.select(
                sa.func.sum(exchange_trades.c.price_fen * exchange_trades.c.quantity),
                sa.func.sum(exchange_trades.c.quantity),
            ).where(*online, exchange_trades.c.day == last_day)
        ).one()
        vwap = (int(turnover) * 2 + int(volume)) // (2 * int(volume))  # half up, in fen
        return vwap - vwap % rules.tick_fen


def short(side: str, need: int, free: int) -> OrderRefusedError:
    code, zh = (
        ("INSUFFICIENT_FUNDS", "可用资金不足")
        if side == "buy"
        else ("INSUFFICIENT_UNITS", "可卖数量不足（当日买入不可当日卖出）")
    )
    return OrderRefusedError(
        code,
        f"{need:,} needed, {max(free, 0):,} available",
        f"{zh}：需要 {need:,}，可用 {max(free, 0):,}",
    )


def _unknown(owner: str, why: str) -> OrderRefusedError:
    return OrderRefusedError(
        "UNKNOWN_COUNTERPARTY",
        f"{owner} cannot be a counterparty here: {why}",
        f"{owner} 不能作为交易对方（不是本市场的交易会员）",
    )
