"""The same funds idempotency key arriving twice at once: the second request loses the race
for the unique (owner, key) row and answers with the first one's instruction (or KEY_REUSED
for other terms), never a 500, and the money moves once. SQLite and PostgreSQL (issue 16)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import sqlalchemy as sa

from carbonbook.exchange.bank import SimulatedBank
from carbonbook.exchange.funds import Funds, FundsRefusedError, FundTransfer
from carbonbook.ledger import Ledger
from tests.exchange.accounts import admit

STEEL = "ent:steel"
NAME = "示例钢铁有限公司"
BANK_NO = "6222020200000000017"


@pytest.fixture
def funds(engine: sa.Engine) -> Funds:
    bank = SimulatedBank(engine)
    bank.open_account(BANK_NO, NAME, 10_000_000_00)
    ledger = Ledger(engine)
    ledger.ensure_assets()
    admit(engine, STEEL, NAME)
    funds = Funds(engine, ledger, bank)
    funds.bind(owner=STEEL, account_no=BANK_NO, holder=NAME, by="steel")
    return funds


def _racing(funds: Funds, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each request's first look finds no row under its key, as when both look before either
    has written: the write then meets the unique (owner, key) constraint."""
    seen: set[int] = set()
    real = Funds._by_key

    def first_look_misses(self: Funds, owner: str, key: str) -> FundTransfer | None:
        me = threading.get_ident()
        if me not in seen:
            seen.add(me)
            return None
        return real(self, owner, key)

    monkeypatch.setattr(Funds, "_by_key", first_look_misses)


def test_a_key_arriving_twice_at_once_answers_with_the_first_instruction(
    funds: Funds, monkeypatch: pytest.MonkeyPatch
):
    first = funds.deposit(owner=STEEL, amount_fen=500_00, key="d1", by="steel")
    _racing(funds, monkeypatch)
    again = funds.deposit(owner=STEEL, amount_fen=500_00, key="d1", by="steel")
    assert (again.id, again.state) == (first.id, first.state)
    cash = funds.ledger.find_account(STEEL, "CNY")
    assert cash is not None
    assert cash.balance == 500_00
    assert len(funds.transfers(STEEL)) == 1


def test_a_key_arriving_twice_at_once_with_other_terms_is_key_reused(
    funds: Funds, monkeypatch: pytest.MonkeyPatch
):
    funds.deposit(owner=STEEL, amount_fen=500_00, key="w1", by="steel")
    _racing(funds, monkeypatch)
    with pytest.raises(FundsRefusedError) as refused:
        funds.withdraw(owner=STEEL, amount_fen=100_00, key="w1", by="steel")
    assert refused.value.code == "KEY_REUSED"
    cash: Any = funds.ledger.find_account(STEEL, "CNY")
    assert (cash.balance, cash.available) == (500_00, 500_00)  # the hold was rolled back
    assert len(funds.transfers(STEEL)) == 1
