"""Client funds (资金): bank binding, deposits (入金), withdrawals (出金) and the daily
reconciliation (对账) with the settlement bank.

Segregation: every fen a client holds on the ledger is backed by the bank's client-funds
account (客户资金专户). Its mirror on the ledger is one issuer account per bank, owned by
`exchange:client-funds`: a deposit moves cash from the mirror to the member once the bank
has booked it; a withdrawal holds the member's cash first (a two-phase reservation), then
posts it to the mirror once the bank has paid out, or voids it when the bank refuses. So the
mirror's balance is always minus the client money the bank must hold, and the exchange's own
money never passes through it.

Nothing is lost when the bank fails. The instruction is written down (pending) before the
bank is asked, under a reference the bank keeps; when the bank does not answer, or answers
"queued", the instruction stays pending and `resolve_pending` asks again by reference (or
sends it again when the bank never saw it); the ledger moves only on the bank's "done", under
the instruction's key, so an answer applied twice moves nothing twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from carbonbook import auditlog
from carbonbook.db.ids import allocate_ids
from carbonbook.db.schema import (
    account_balances,
    bank_bindings,
    fund_reconciliations,
    fund_transfers,
)
from carbonbook.errors import ConflictError
from carbonbook.exchange.bank import (
    SHANGHAI,
    BankReceipt,
    BankUnavailableError,
    SettlementBank,
    shanghai_day,
)
from carbonbook.exchange.errors import ExchangeError
from carbonbook.exchange.members import Members
from carbonbook.ledger import AccountFlags, Batch, Ledger
from carbonbook.ledger import TransferRequest as T
from carbonbook.ledger.service import now_us
from carbonbook.numbers import NotADayError, business_day

if TYPE_CHECKING:
    from collections.abc import Callable

CLIENT_FUNDS = "exchange:client-funds"  # the ledger's mirror of the bank's 客户资金专户
CASH = "CNY"
MAX_AMOUNT_FEN = 10**13  # 100 bn yuan: anything above is a typo, not an instruction
DIRECTIONS = ("deposit", "withdrawal")


class FundsRefusedError(ExchangeError):
    """A refused binding, deposit or withdrawal; nothing was changed."""

    http_status = 409

    def __init__(self, code: str, message: str, message_zh: str) -> None:
        super().__init__(message, message_zh)
        self.code = code  # type: ignore[misc]


def mask(account_no: str) -> str:
    """A bank account number as shown anywhere: its last four digits only."""
    return "**** " + account_no[-4:]


@dataclass(frozen=True, slots=True)
class Binding:
    id: int
    account_id: int
    bank: str
    account_no: str
    holder: str
    bound_by: str
    bound_at: int

    def to_document(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "bank": self.bank,
            "account_no": mask(self.account_no),
            "holder": self.holder,
            "bound_at_us": self.bound_at,
        }


@dataclass(frozen=True, slots=True)
class FundTransfer:
    id: int
    owner: str
    key: str
    direction: str
    amount_fen: int
    bank: str
    account_no: str
    ref: str
    state: str  # pending | done | failed
    code: str | None
    requested_by: str
    created_at: int
    completed_at: int | None

    def to_document(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "key": self.key,
            "direction": self.direction,
            "amount_fen": self.amount_fen,
            "bank": self.bank,
            "account_no": mask(self.account_no),
            "ref": self.ref,
            "state": self.state,
            "code": self.code,
            "created_at_us": self.created_at,
            "completed_at_us": self.completed_at,
        }


@dataclass(frozen=True, slots=True)
class Reconciliation:
    id: int
    day: str
    bank: str
    bank_balance_fen: int
    ledger_balance_fen: int
    clients_total_fen: int
    breaks: list[dict[str, Any]]
    state: str  # balanced | breaks
    run_by: str
    run_at: int

    def to_document(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "day": self.day,
            "bank": self.bank,
            "bank_balance_fen": self.bank_balance_fen,
            "ledger_balance_fen": self.ledger_balance_fen,
            "clients_total_fen": self.clients_total_fen,
            "breaks": self.breaks,
            "state": self.state,
            "run_by": self.run_by,
            "run_at_us": self.run_at,
        }


class Funds:
    """Deposits and withdrawals through one settlement bank, and their reconciliation."""

    def __init__(
        self,
        engine: sa.Engine,
        ledger: Ledger,
        bank: SettlementBank,
        *,
        members: Members | None = None,
        clock: Callable[[], int] = now_us,
    ) -> None:
        self.engine = engine
        self.ledger = ledger
        self.bank = bank
        self.members = members or Members(engine, clock=clock)
        self.clock = clock

    # -- binding (绑定银行账户) -----------------------------------------------------------------

    def bind(self, *, owner: str, account_no: str, holder: str, by: str) -> Binding:
        """Bind the entity's own bank account (same name as the trading account); it replaces
        an earlier binding when no deposit or withdrawal is on its way."""
        account = self.members.account_of(owner)
        if account is None or not account.approved:
            raise FundsRefusedError(
                "NO_TRADING_ACCOUNT",
                "open a trading account (approved) before binding a bank account",
                "请先开通交易账户（审核通过）再绑定银行账户",
            )
        number = account_no.replace(" ", "")
        name = " ".join(holder.split())
        if not number.isdigit() or not 12 <= len(number) <= 30:
            raise FundsRefusedError(
                "BAD_BANK_ACCOUNT",
                "a bank account number is 12 to 30 digits",
                "银行账号应为 12-30 位数字",
            )
        if name != account.entity_name:
            raise FundsRefusedError(
                "HOLDER_MISMATCH",
                "the bank account must be in the trading account's own name (同名账户)",
                "绑定的银行账户须与交易账户同名",
            )
        try:
            at_bank = self.bank.holder_of(number)
        except BankUnavailableError:
            raise _unavailable() from None
        if at_bank is None or at_bank != name:
            raise FundsRefusedError(
                "BANK_ACCOUNT_UNKNOWN",
                f"{self.bank.code} has no account {mask(number)} in that name",
                f"{self.bank.code} 没有该户名下的账户 {mask(number)}",
            )
        with self.engine.begin() as conn:
            # One bank account serves one trading account: a second applicant bearing another
            # firm's name could otherwise draw on that firm's account.
            taken = conn.execute(
                sa.select(bank_bindings.c.account_id).where(
                    bank_bindings.c.account_no == number,
                    bank_bindings.c.state == "bound",
                    bank_bindings.c.account_id != account.id,
                )
            ).first()
            if taken is not None:
                raise FundsRefusedError(
                    "BANK_ACCOUNT_TAKEN",
                    "this bank account is bound to another trading account",
                    "该银行账户已绑定其他交易账户",
                )
            if self._pending_count(conn, owner):
                raise FundsRefusedError(
                    "TRANSFERS_PENDING",
                    "a deposit or withdrawal is still on its way: bind again when it has settled",
                    "尚有在途的出入金，完成后再更换绑定",
                )
            conn.execute(
                bank_bindings.update()
                .where(bank_bindings.c.account_id == account.id, bank_bindings.c.state == "bound")
                .values(state="unbound", unbound_at=self.clock())
            )
            binding_id = allocate_ids(conn)
            conn.execute(
                bank_bindings.insert().values(
                    id=binding_id,
                    account_id=account.id,
                    bank=self.bank.code,
                    account_no=number,
                    holder=name,
                    state="bound",
                    bound_by=by,
                    bound_at=self.clock(),
                )
            )
            # The audit trail names the bank and the last four digits, never the number.
            auditlog.append(
                conn,
                by,
                "funds.bank.bind",
                f"trading-account:{account.id}",
                {"bank": self.bank.code, "account_no": mask(number)},
            )
        binding = self.binding_of(owner)
        assert binding is not None  # noqa: S101 - bound just now
        return binding

    def binding_of(self, owner: str) -> Binding | None:
        account = self.members.account_of(owner)
        if account is None:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(bank_bindings).where(
                    bank_bindings.c.account_id == account.id, bank_bindings.c.state == "bound"
                )
            ).first()
        if row is None:
            return None
        return Binding(
            row.id, row.account_id, row.bank, row.account_no, row.holder, row.bound_by, row.bound_at
        )

    # -- deposits and withdrawals ----------------------------------------------------------

    def deposit(self, *, owner: str, amount_fen: int, key: str, by: str) -> FundTransfer:
        """Ask the bank to move money from the bound account into the client-funds account;
        the member's cash appears once the bank has booked it."""
        return self._instruct(owner, "deposit", amount_fen, key, by)

    def withdraw(self, *, owner: str, amount_fen: int, key: str, by: str) -> FundTransfer:
        """Hold the member's cash, ask the bank to pay it to the bound account, and post the
        hold when it has (or release it when the bank refuses)."""
        return self._instruct(owner, "withdrawal", amount_fen, key, by)

    def transfers(self, owner: str | None = None, *, limit: int = 50) -> list[FundTransfer]:
        query = sa.select(fund_transfers).order_by(fund_transfers.c.id.desc()).limit(limit)
        if owner is not None:
            query = query.where(fund_transfers.c.owner == owner)
        with self.engine.connect() as conn:
            return [_transfer(r) for r in conn.execute(query)]

    def resolve_pending(self, *, by: str) -> list[FundTransfer]:
        """Ask the bank about every pending instruction and apply its answers (the daily job,
        and the recovery after a crash or a lost answer)."""
        with self.engine.connect() as conn:
            pending = [
                _transfer(r)
                for r in conn.execute(
                    sa.select(fund_transfers)
                    .where(fund_transfers.c.state == "pending")
                    .order_by(fund_transfers.c.id)
                )
            ]
        out = []
        for transfer in pending:
            try:
                receipt = self.bank.status(transfer.ref)
            except BankUnavailableError:
                out.append(transfer)
                continue
            if receipt is None:  # the bank never saw it: send it again, same reference
                out.append(self._send(transfer, by))
            else:
                out.append(self._apply(transfer, receipt, by))
        return out

    def _instruct(
        self, owner: str, direction: str, amount_fen: int, key: str, by: str
    ) -> FundTransfer:
        if type(amount_fen) is not int or not 0 < amount_fen <= MAX_AMOUNT_FEN:
            raise FundsRefusedError(
                "BAD_AMOUNT",
                "an amount is a positive number of fen, at most 100 bn yuan",
                "金额须为正的整数分，且不超过 1000 亿元",
            )
        if not key or len(key) > 100:
            raise FundsRefusedError(
                "BAD_KEY", "an idempotency key is 1-100 characters", "幂等键须为 1-100 个字符"
            )
        found = self._by_key(owner, key)
        if found is not None:
            return _same_terms(found, direction, amount_fen)
        binding = self.binding_of(owner)
        if binding is None:
            raise FundsRefusedError(
                "NO_BANK_BINDING", "bind a bank account first", "请先绑定银行账户"
            )
        try:
            transfer = self._record(owner, direction, amount_fen, key, by, binding)
        except sa.exc.IntegrityError:
            # The same key arrived twice at once: the other request's row won the unique
            # (owner, key); answer with it, as a retry after it would have been answered.
            found = self._by_key(owner, key)
            if found is None:
                raise
            return _same_terms(found, direction, amount_fen)
        return self._send(transfer, by)

    def _record(
        self, owner: str, direction: str, amount_fen: int, key: str, by: str, binding: Binding
    ) -> FundTransfer:
        """Write the instruction down (pending), holding a withdrawal's cash, in one go."""
        with self.engine.begin() as conn:
            transfer_id = allocate_ids(conn)
            hold = None
            if direction == "withdrawal":
                hold = self._hold(conn, owner, transfer_id, amount_fen)
            conn.execute(
                fund_transfers.insert().values(
                    id=transfer_id,
                    owner=owner,
                    key=key,
                    direction=direction,
                    amount_fen=amount_fen,
                    bank=binding.bank,
                    account_no=binding.account_no,
                    ref=f"CB{transfer_id}",
                    state="pending",
                    code=None,
                    pending_transfer=hold,
                    requested_by=by,
                    created_at=self.clock(),
                )
            )
            auditlog.append(
                conn,
                by,
                f"funds.{direction}.request",
                f"fund-transfer:{transfer_id}",
                {"amount_fen": amount_fen},
            )
            return self._get(conn, transfer_id)

    def _hold(self, conn: sa.Connection, owner: str, transfer_id: int, amount_fen: int) -> int:
        cash = self.ledger.open_account_in(conn, owner, CASH)
        if cash.available < amount_fen:
            raise FundsRefusedError(
                "INSUFFICIENT_FUNDS",
                f"{amount_fen} fen asked, {cash.available} fen available",
                f"可用资金不足：申请 {amount_fen} 分，可用 {cash.available} 分",
            )
        reserved = self.ledger.post_in(
            conn,
            Batch(
                "exchange",
                f"funds:{transfer_id}:hold",
                [T.reserve(cash.id, self._mirror(conn).id, CASH, amount_fen, "withdrawal")],
            ),
        )
        return reserved.first_transfer_id

    def _send(self, transfer: FundTransfer, by: str) -> FundTransfer:
        """Instruct the bank (again, by the same reference) and apply whatever it answers."""
        funds_no = self.bank.client_funds_no
        debit, credit = (
            (transfer.account_no, funds_no)
            if transfer.direction == "deposit"
            else (funds_no, transfer.account_no)
        )
        try:
            receipt = self.bank.transfer(transfer.ref, debit, credit, transfer.amount_fen)
        except BankUnavailableError:
            return self._note(transfer, "BANK_UNAVAILABLE")
        return self._apply(transfer, receipt, by)

    def _apply(self, transfer: FundTransfer, receipt: BankReceipt, by: str) -> FundTransfer:
        if receipt.state == "queued":
            return self._note(transfer, "BANK_QUEUED")
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(fund_transfers)
                .where(fund_transfers.c.id == transfer.id)
                .with_for_update()
            ).one()
            if row.state != "pending":  # applied already, by another caller
                return _transfer(row)
            done = receipt.state == "done"
            batch_id = self._settle(conn, row, done=done)
            conn.execute(
                fund_transfers.update()
                .where(fund_transfers.c.id == transfer.id)
                .values(
                    state="done" if done else "failed",
                    code=None if done else (receipt.code or "BANK_REJECTED"),
                    batch_id=batch_id,
                    completed_at=self.clock(),
                )
            )
            auditlog.append(
                conn,
                by,
                f"funds.{row.direction}." + ("done" if done else "failed"),
                f"fund-transfer:{row.id}",
                None if done else {"code": receipt.code},
            )
            return self._get(conn, transfer.id)

    def _settle(self, conn: sa.Connection, row: Any, *, done: bool) -> int | None:
        """The ledger's side of the bank's answer, under the instruction's own key."""
        key = f"funds:{row.id}"
        if row.direction == "deposit":
            if not done:
                return None
            cash = self.ledger.open_account_in(conn, row.owner, CASH)
            leg = T.move(self._mirror(conn).id, cash.id, CASH, row.amount_fen, "deposit")
        elif done:
            leg = T.post_pending(row.pending_transfer, reason="withdrawal")
        else:
            leg = T.void_pending(row.pending_transfer, reason="withdrawal refused by the bank")
        return self.ledger.post_in(conn, Batch("exchange", key, [leg])).batch_id

    def _note(self, transfer: FundTransfer, code: str) -> FundTransfer:
        """Still pending: say why (the bank did not answer, or queued it)."""
        with self.engine.begin() as conn:
            conn.execute(
                fund_transfers.update()
                .where(fund_transfers.c.id == transfer.id, fund_transfers.c.state == "pending")
                .values(code=code)
            )
            return self._get(conn, transfer.id)

    # -- reconciliation (对账) -------------------------------------------------------------

    def reconcile(self, day: str, *, by: str) -> Reconciliation:
        """Compare the bank's statement of the client-funds account for `day` with the
        instructions the ledger completed that day, item by item and in balance."""
        try:  # 9999-12-31 and 0001-01-01 overflow the day's arithmetic: a bounded day
            business_day(day)
        except NotADayError as exc:
            raise FundsRefusedError("BAD_DAY", str(exc), exc.message_zh) from None
        end = _end_of_day_us(day)
        funds_no = self.bank.client_funds_no
        try:
            bank_items = {e.ref: e.amount_fen for e in self.bank.entries(funds_no, day)}
            bank_balance = self.bank.balance(funds_no, end_of_day=day)
        except BankUnavailableError:
            raise _unavailable() from None
        with self.engine.begin() as conn:
            mirror_id = self._mirror(conn).id
            ledger_items = self._completed_on(conn, day)
            states = self._states(conn, bank_items.keys() | ledger_items.keys())
            clients = self._clients_total(conn)
        breaks = self._breaks(bank_items, ledger_items, states)
        ledger_balance = -self.ledger.balance(mirror_id, as_of=end).balance
        if ledger_balance != bank_balance:
            breaks.append(
                {
                    "kind": "balance",
                    "bank_fen": bank_balance,
                    "ledger_fen": ledger_balance,
                    "difference_fen": bank_balance - ledger_balance,
                }
            )
        mirror_now = -self.ledger.balance(mirror_id).balance
        if day == shanghai_day(self.clock()) and clients != mirror_now:
            # Client cash on the ledger that the bank's account does not back.
            breaks.append({"kind": "unbacked", "clients_fen": clients, "mirror_fen": mirror_now})
        with self.engine.begin() as conn:
            run_id = allocate_ids(conn)
            state = "balanced" if not breaks else "breaks"
            conn.execute(
                fund_reconciliations.insert().values(
                    id=run_id,
                    day=day,
                    bank=self.bank.code,
                    bank_balance_fen=bank_balance,
                    ledger_balance_fen=ledger_balance,
                    clients_total_fen=clients,
                    breaks=json.dumps(breaks, ensure_ascii=False, sort_keys=True),
                    state=state,
                    run_by=by,
                    run_at=self.clock(),
                )
            )
            auditlog.append(conn, by, "funds.reconcile", f"reconciliation:{day}", {"state": state})
            return _reconciliation(
                conn.execute(
                    sa.select(fund_reconciliations).where(fund_reconciliations.c.id == run_id)
                ).one()
            )

    def reconciliations(self, *, limit: int = 30) -> list[Reconciliation]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(fund_reconciliations)
                .order_by(fund_reconciliations.c.id.desc())
                .limit(limit)
            )
            return [_reconciliation(r) for r in rows]

    def _completed_on(self, conn: sa.Connection, day: str) -> dict[str, int]:
        start = _end_of_day_us(_previous(day)) + 1
        rows = conn.execute(
            sa.select(
                fund_transfers.c.ref, fund_transfers.c.direction, fund_transfers.c.amount_fen
            ).where(
                fund_transfers.c.state == "done",
                fund_transfers.c.bank == self.bank.code,
                fund_transfers.c.completed_at.between(start, _end_of_day_us(day)),
            )
        )
        return {r.ref: _signed(r.direction, r.amount_fen) for r in rows}

    @staticmethod
    def _states(conn: sa.Connection, refs: set[str]) -> dict[str, str]:
        rows = conn.execute(
            sa.select(fund_transfers.c.ref, fund_transfers.c.state).where(
                fund_transfers.c.ref.in_(sorted(refs))
            )
        )
        return {r.ref: r.state for r in rows}

    def _breaks(
        self, bank_items: dict[str, int], ledger_items: dict[str, int], states: dict[str, str]
    ) -> list[dict[str, Any]]:
        """Every item on one side only, or on both with different amounts, and what it is."""
        out: list[dict[str, Any]] = []
        for ref in sorted(bank_items.keys() | ledger_items.keys()):
            bank_fen, ledger_fen = bank_items.get(ref), ledger_items.get(ref)
            if bank_fen == ledger_fen:
                continue
            state = states.get(ref)
            if bank_fen is not None and ledger_fen is not None:
                kind = "amount_mismatch"
            elif ledger_fen is None and state == "pending":
                kind = "in_transit"  # booked at the bank, not yet on the ledger
            elif ledger_fen is None and state == "done":
                kind = "timing"  # on the ledger on another day
            elif bank_fen is None and state is not None:
                kind = "timing" if self._booked_elsewhere(ref) else "missing_at_bank"
            else:
                kind = "unknown_at_exchange"
            out.append({"kind": kind, "ref": ref, "bank_fen": bank_fen, "ledger_fen": ledger_fen})
        return out

    def _booked_elsewhere(self, ref: str) -> bool:
        try:
            receipt = self.bank.status(ref)
        except BankUnavailableError:
            return False
        return receipt is not None and receipt.state == "done"

    @staticmethod
    def _clients_total(conn: sa.Connection) -> int:
        """All client cash on the ledger: CNY held by accounts that are not issuers."""
        issuer = int(AccountFlags.ISSUER)
        total = conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(account_balances.c.balance), 0)).where(
                account_balances.c.asset == CASH, account_balances.c.flags.op("&")(issuer) == 0
            )
        ).scalar_one()
        return int(total)

    # -- helpers ---------------------------------------------------------------------------

    def _mirror(self, conn: sa.Connection) -> Any:
        return self.ledger.open_account_in(
            conn, CLIENT_FUNDS, CASH, self.bank.code, AccountFlags.ISSUER
        )

    def _by_key(self, owner: str, key: str) -> FundTransfer | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(fund_transfers).where(
                    fund_transfers.c.owner == owner, fund_transfers.c.key == key
                )
            ).first()
            return None if row is None else _transfer(row)

    @staticmethod
    def _pending_count(conn: sa.Connection, owner: str) -> int:
        return int(
            conn.execute(
                sa.select(sa.func.count()).where(
                    fund_transfers.c.owner == owner, fund_transfers.c.state == "pending"
                )
            ).scalar_one()
        )

    @staticmethod
    def _get(conn: sa.Connection, transfer_id: int) -> FundTransfer:
        return _transfer(
            conn.execute(sa.select(fund_transfers).where(fund_transfers.c.id == transfer_id)).one()
        )


def _unavailable() -> ConflictError:
    error = ConflictError(
        "the settlement bank did not answer: try again shortly", "存管银行未响应，请稍后重试"
    )
    error.code = "BANK_UNAVAILABLE"  # type: ignore[misc]
    return error


def _same_terms(found: FundTransfer, direction: str, amount_fen: int) -> FundTransfer:
    """The instruction already under a key, when the retry asks for the same; else KEY_REUSED."""
    if (found.direction, found.amount_fen) != (direction, amount_fen):
        raise FundsRefusedError(
            "KEY_REUSED",
            f"key {found.key!r} was used for another instruction ({found.direction})",
            f"幂等键 {found.key!r} 已用于另一笔出入金",
        )
    return found


def _signed(direction: str, amount_fen: int) -> int:
    return amount_fen if direction == "deposit" else -amount_fen


def _end_of_day_us(day: str) -> int:
    """The last microsecond of an Asia/Shanghai day."""
    midnight = datetime.combine(date.fromisoformat(day) + timedelta(days=1), time(), SHANGHAI)
    return int(midnight.timestamp() * 1_000_000) - 1


def _previous(day: str) -> str:
    return (date.fromisoformat(day) - timedelta(days=1)).isoformat()


def _transfer(row: Any) -> FundTransfer:
    return FundTransfer(
        row.id,
        row.owner,
        row.key,
        row.direction,
        row.amount_fen,
        row.bank,
        row.account_no,
        row.ref,
        row.state,
        row.code,
        row.requested_by,
        row.created_at,
        row.completed_at,
    )


def _reconciliation(row: Any) -> Reconciliation:
    return Reconciliation(
        row.id,
        row.day,
        row.bank,
        row.bank_balance_fen,
        row.ledger_balance_fen,
        row.clients_total_fen,
        json.loads(row.breaks),
        row.state,
        row.run_by,
        row.run_at,
    )
