"""The settlement bank (存管银行) as the exchange sees it, and an in-process simulated bank.

Client money never sits with the exchange: it is in a client-funds account (客户资金专户) at
the settlement bank, apart from the exchange's own money. The exchange sends the bank
instructions (`transfer`), each under a reference of its own choosing, and a bank answers
done, queued (it will book later), or rejected. A bank may also not answer at all
(`BankUnavailableError`): then the instruction may or may not have been booked, and only
asking again under the same reference (`status`, or `transfer` again, which a bank treats
as the same instruction) tells. The exchange's side of this is `exchange/funds.py`.

`SimulatedBank` keeps its own books (its own tables, reached only through this interface)
and can be told to fail: refuse to answer, lose an answer after booking, queue, or reject.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from carbonbook.db.schema import sim_bank_accounts, sim_bank_entries
from carbonbook.ledger.service import now_us

if TYPE_CHECKING:
    from collections.abc import Callable

SHANGHAI = ZoneInfo("Asia/Shanghai")
FAULTS = ("unavailable", "lost_answer", "queue", "reject")


class BankUnavailableError(Exception):
    """The bank did not answer; the instruction's outcome is unknown until asked again."""


@dataclass(frozen=True, slots=True)
class BankReceipt:
    ref: str
    state: str  # done | queued | rejected
    code: str | None = None  # why rejected


@dataclass(frozen=True, slots=True)
class BankEntry:
    """One booked movement on an account, signed from that account's side."""

    ref: str
    amount_fen: int
    day: str
    at: int


class SettlementBank(Protocol):
    """What the exchange needs of a settlement bank."""

    code: str
    client_funds_no: str

    def holder_of(self, account_no: str) -> str | None: ...

    def transfer(self, ref: str, debit_no: str, credit_no: str, amount_fen: int) -> BankReceipt: ...

    def status(self, ref: str) -> BankReceipt | None: ...

    def balance(self, account_no: str, *, end_of_day: str | None = None) -> int: ...

    def entries(self, account_no: str, day: str) -> list[BankEntry]: ...


def shanghai_day(at_us: int) -> str:
    return datetime.fromtimestamp(at_us / 1_000_000, UTC).astimezone(SHANGHAI).date().isoformat()


class SimulatedBank:
    """A bank with its own books, for the demo, the tests and the benchmarks."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        code: str = "SIMBANK",
        client_funds_no: str = "6222000000000000001",
        client_funds_holder: str = "carbonbook 交易所客户资金专户",
        clock: Callable[[], int] = now_us,
        fault_rate: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.engine = engine
        self.code = code
        self.client_funds_no = client_funds_no
        self.clock = clock
        self.faults: deque[str] = deque()  # injected in order, one per call
        self._random = random.Random(seed)  # noqa: S311 - a simulation, not a secret
        self._fault_rate = fault_rate
        self.open_account(client_funds_no, client_funds_holder)

    # -- the bank's own customers (simulation set-up) ----------------------------------------

    def open_account(self, account_no: str, holder: str, balance_fen: int = 0) -> None:
        """Open a customer account (or top up an existing one) at the simulated bank."""
        with self.engine.begin() as conn:
            found = conn.execute(
                sa.select(sim_bank_accounts.c.balance_fen).where(
                    sim_bank_accounts.c.account_no == account_no
                )
            ).first()
            if found is None:
                conn.execute(
                    sim_bank_accounts.insert().values(
                        account_no=account_no,
                        holder=holder,
                        balance_fen=balance_fen,
                        opened_at=self.clock(),
                    )
                )
            elif balance_fen:
                conn.execute(
                    sim_bank_accounts.update()
                    .where(sim_bank_accounts.c.account_no == account_no)
                    .values(balance_fen=sim_bank_accounts.c.balance_fen + balance_fen)
                )

    # -- the interface ---------------------------------------------------------------------

    def holder_of(self, account_no: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(sim_bank_accounts.c.holder).where(
                    sim_bank_accounts.c.account_no == account_no
                )
            ).scalar_one_or_none()

    def transfer(self, ref: str, debit_no: str, credit_no: str, amount_fen: int) -> BankReceipt:
        """Book an instruction once: the same ref again returns what it became."""
        fault = self._fault()
        if fault == "unavailable":
            raise BankUnavailableError(f"{self.code} did not answer")
        with self.engine.begin() as conn:
            found = conn.execute(
                sa.select(sim_bank_entries).where(sim_bank_entries.c.ref == ref)
            ).first()
            if found is not None:
                same = (found.debit_no, found.credit_no, found.amount_fen) == (
                    debit_no,
                    credit_no,
                    amount_fen,
                )
                return _receipt(found) if same else BankReceipt(ref, "rejected", "REF_REUSED")
            if fault == "queue":
                receipt = self._book(conn, ref, debit_no, credit_no, amount_fen, queued=True)
            elif fault == "reject":
                receipt = self._enter(
                    conn, ref, debit_no, credit_no, amount_fen, "rejected", "DECLINED"
                )
            else:
                receipt = self._book(conn, ref, debit_no, credit_no, amount_fen, queued=False)
        if fault == "lost_answer":
            raise BankUnavailableError(f"{self.code} booked {ref} but the answer was lost")
        return receipt

    def status(self, ref: str) -> BankReceipt | None:
        if self._fault() in ("unavailable", "lost_answer"):
            raise BankUnavailableError(f"{self.code} did not answer")
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(sim_bank_entries).where(sim_bank_entries.c.ref == ref)
            ).first()
            return None if row is None else _receipt(row)

    def balance(self, account_no: str, *, end_of_day: str | None = None) -> int:
        """The balance now, or at the end of a past day (now less what was booked after)."""
        with self.engine.connect() as conn:
            now = conn.execute(
                sa.select(sim_bank_accounts.c.balance_fen).where(
                    sim_bank_accounts.c.account_no == account_no
                )
            ).scalar_one_or_none()
            if now is None:
                return 0
            if end_of_day is None:
                return int(now)
            later = conn.execute(
                sa.select(sim_bank_entries.c.debit_no, sim_bank_entries.c.amount_fen).where(
                    sim_bank_entries.c.state == "done",
                    sim_bank_entries.c.day > end_of_day,
                    sa.or_(
                        sim_bank_entries.c.debit_no == account_no,
                        sim_bank_entries.c.credit_no == account_no,
                    ),
                )
            )
            moved = sum(
                -int(r.amount_fen) if r.debit_no == account_no else int(r.amount_fen) for r in later
            )
            return int(now) - moved

    def entries(self, account_no: str, day: str) -> list[BankEntry]:
        """The day's booked movements on an account (its statement, 对账单)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(sim_bank_entries)
                .where(
                    sim_bank_entries.c.state == "done",
                    sim_bank_entries.c.day == day,
                    sa.or_(
                        sim_bank_entries.c.debit_no == account_no,
                        sim_bank_entries.c.credit_no == account_no,
                    ),
                )
                .order_by(sim_bank_entries.c.id)
            )
            return [
                BankEntry(
                    r.ref,
                    -r.amount_fen if r.debit_no == account_no else r.amount_fen,
                    r.day,
                    r.at,
                )
                for r in rows
            ]

    # -- the simulation --------------------------------------------------------------------

    def process_queue(self) -> int:
        """Book what was queued (the bank's batch run); returns how many were processed."""
        with self.engine.begin() as conn:
            queued = conn.execute(
                sa.select(sim_bank_entries)
                .where(sim_bank_entries.c.state == "queued")
                .order_by(sim_bank_entries.c.id)
            ).all()
            for row in queued:
                conn.execute(sim_bank_entries.delete().where(sim_bank_entries.c.id == row.id))
                self._book(conn, row.ref, row.debit_no, row.credit_no, row.amount_fen, queued=False)
            return len(queued)

    def _fault(self) -> str | None:
        if self.faults:
            return self.faults.popleft()
        if self._fault_rate and self._random.random() < self._fault_rate:
            return self._random.choice(FAULTS)
        return None

    def _book(
        self,
        conn: sa.Connection,
        ref: str,
        debit_no: str,
        credit_no: str,
        amount_fen: int,
        *,
        queued: bool,
    ) -> BankReceipt:
        balances = dict(
            conn.execute(
                sa.select(sim_bank_accounts.c.account_no, sim_bank_accounts.c.balance_fen)
                .where(sim_bank_accounts.c.account_no.in_((debit_no, credit_no)))
                .with_for_update()
            ).all()
        )
        if debit_no not in balances or credit_no not in balances or debit_no == credit_no:
            return self._enter(
                conn, ref, debit_no, credit_no, amount_fen, "rejected", "NO_SUCH_ACCOUNT"
            )
        if amount_fen <= 0:
            return self._enter(conn, ref, debit_no, credit_no, amount_fen, "rejected", "BAD_AMOUNT")
        if queued:
            return self._enter(conn, ref, debit_no, credit_no, amount_fen, "queued", None)
        if balances[debit_no] < amount_fen:
            return self._enter(
                conn, ref, debit_no, credit_no, amount_fen, "rejected", "INSUFFICIENT_BALANCE"
            )
        for no, delta in ((debit_no, -amount_fen), (credit_no, amount_fen)):
            conn.execute(
                sim_bank_accounts.update()
                .where(sim_bank_accounts.c.account_no == no)
                .values(balance_fen=sim_bank_accounts.c.balance_fen + delta)
            )
        return self._enter(conn, ref, debit_no, credit_no, amount_fen, "done", None)

    def _enter(
        self,
        conn: sa.Connection,
        ref: str,
        debit_no: str,
        credit_no: str,
        amount_fen: int,
        state: str,
        code: str | None,
    ) -> BankReceipt:
        at = self.clock()
        conn.execute(
            sim_bank_entries.insert().values(
                ref=ref,
                debit_no=debit_no,
                credit_no=credit_no,
                amount_fen=amount_fen,
                state=state,
                code=code,
                day=shanghai_day(at),
                at=at,
            )
        )
        return BankReceipt(ref, state, code)


def _receipt(row: sa.Row[tuple[object, ...]]) -> BankReceipt:
    return BankReceipt(str(row.ref), str(row.state), None if row.code is None else str(row.code))
