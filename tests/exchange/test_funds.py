"""Client funds through the settlement bank: binding a same-name account, deposits and
withdrawals that move the ledger only on the bank's "done", a bank that refuses, queues,
does not answer or loses its answer, recovery that never counts twice, and the daily
reconciliation of the bank's client-funds account with the ledger. SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carbonbook.exchange.bank import FAULTS, SimulatedBank, shanghai_day
from carbonbook.exchange.funds import CLIENT_FUNDS, Funds, FundsRefusedError
from carbonbook.exchange.members import ApplicationRefusedError, Members
from carbonbook.ledger import AccountFlags, Batch, Ledger
from carbonbook.ledger import TransferRequest as T
from carbonbook.ledger.service import now_us
from tests.exchange.accounts import admit

STEEL = "ent:steel"
NAME = "示例钢铁有限公司"
STEEL_BANK_NO = "6222020200000000017"
YUAN = 100


@pytest.fixture
def bank(engine: sa.Engine) -> SimulatedBank:
    bank = SimulatedBank(engine)
    bank.open_account(STEEL_BANK_NO, NAME, 10_000_000 * YUAN)
    return bank


@pytest.fixture
def funds(engine: sa.Engine, bank: SimulatedBank) -> Funds:
    ledger = Ledger(engine)
    ledger.ensure_assets()
    admit(engine, STEEL, NAME)
    funds = Funds(engine, ledger, bank)
    funds.bind(owner=STEEL, account_no=STEEL_BANK_NO, holder=NAME, by="steel")
    return funds


def _cash(funds: Funds, owner: str = STEEL) -> tuple[int, int]:
    account = funds.ledger.find_account(owner, "CNY")
    return (0, 0) if account is None else (account.balance, account.available)


def _mirror(funds: Funds) -> int:
    account = funds.ledger.find_account(CLIENT_FUNDS, "CNY", funds.bank.code)
    return 0 if account is None else account.balance


def _bank(funds: Funds, bank: SimulatedBank) -> tuple[int, int]:
    return bank.balance(STEEL_BANK_NO), bank.balance(bank.client_funds_no)


def test_binding_needs_an_approved_account_in_the_same_name(engine: sa.Engine, bank):
    funds = Funds(engine, Ledger(engine), bank)
    with pytest.raises(FundsRefusedError) as early:
        funds.bind(owner=STEEL, account_no=STEEL_BANK_NO, holder=NAME, by="steel")
    assert early.value.code == "NO_TRADING_ACCOUNT"
    admit(engine, STEEL, NAME)
    cases = [
        (STEEL_BANK_NO, "别的公司", "HOLDER_MISMATCH"),
        ("6222020200000000099", NAME, "BANK_ACCOUNT_UNKNOWN"),
        ("62220202", NAME, "BAD_BANK_ACCOUNT"),
    ]
    for number, holder, code in cases:
        with pytest.raises(FundsRefusedError) as refused:
            funds.bind(owner=STEEL, account_no=number, holder=holder, by="steel")
        assert refused.value.code == code
        assert funds.binding_of(STEEL) is None
    bound = funds.bind(owner=STEEL, account_no=STEEL_BANK_NO, holder=NAME, by="steel")
    assert bound.to_document()["account_no"] == "**** 0017"
    assert STEEL_BANK_NO not in str(bound.to_document())


def test_a_deposit_moves_the_ledger_once_the_bank_has_booked_it(funds: Funds, bank):
    done = funds.deposit(owner=STEEL, amount_fen=2_000_000 * YUAN, key="d1", by="steel")
    assert (done.state, done.code) == ("done", None)
    assert _cash(funds) == (2_000_000 * YUAN, 2_000_000 * YUAN)
    assert _mirror(funds) == -2_000_000 * YUAN
    assert _bank(funds, bank) == (8_000_000 * YUAN, 2_000_000 * YUAN)
    again = funds.deposit(owner=STEEL, amount_fen=2_000_000 * YUAN, key="d1", by="steel")
    assert again.id == done.id
    assert _cash(funds)[0] == 2_000_000 * YUAN
    with pytest.raises(FundsRefusedError) as reused:
        funds.deposit(owner=STEEL, amount_fen=1 * YUAN, key="d1", by="steel")
    assert reused.value.code == "KEY_REUSED"


def test_a_deposit_the_bank_refuses_changes_nothing_on_the_ledger(funds: Funds, bank):
    failed = funds.deposit(owner=STEEL, amount_fen=20_000_000 * YUAN, key="big", by="steel")
    assert (failed.state, failed.code) == ("failed", "INSUFFICIENT_BALANCE")
    assert _cash(funds) == (0, 0)
    assert _bank(funds, bank) == (10_000_000 * YUAN, 0)


def test_a_withdrawal_holds_then_pays_or_releases(funds: Funds, bank):
    funds.deposit(owner=STEEL, amount_fen=1_000 * YUAN, key="d", by="steel")
    with pytest.raises(FundsRefusedError) as short:
        funds.withdraw(owner=STEEL, amount_fen=1_001 * YUAN, key="w0", by="steel")
    assert short.value.code == "INSUFFICIENT_FUNDS"
    assert funds.transfers(STEEL)[0].key == "d"  # nothing stored for the refusal
    paid = funds.withdraw(owner=STEEL, amount_fen=400 * YUAN, key="w1", by="steel")
    assert paid.state == "done"
    assert _cash(funds) == (600 * YUAN, 600 * YUAN)
    bank.faults.append("reject")
    refused = funds.withdraw(owner=STEEL, amount_fen=600 * YUAN, key="w2", by="steel")
    assert (refused.state, refused.code) == ("failed", "DECLINED")
    assert _cash(funds) == (600 * YUAN, 600 * YUAN)  # the hold was released
    assert _bank(funds, bank) == (9_999_400 * YUAN, 600 * YUAN)


def test_an_unanswered_instruction_stays_pending_and_is_sent_again(funds: Funds, bank):
    bank.faults.append("unavailable")
    waiting = funds.deposit(owner=STEEL, amount_fen=500 * YUAN, key="d", by="steel")
    assert (waiting.state, waiting.code) == ("pending", "BANK_UNAVAILABLE")
    assert _cash(funds) == (0, 0)
    assert bank.status(waiting.ref) is None  # the bank never saw it
    [resolved] = funds.resolve_pending(by="ops")
    assert resolved.state == "done"
    assert _cash(funds)[0] == 500 * YUAN


def test_a_lost_answer_is_found_by_its_reference_and_counted_once(funds: Funds, bank):
    bank.faults.append("lost_answer")
    waiting = funds.deposit(owner=STEEL, amount_fen=700 * YUAN, key="d", by="steel")
    assert waiting.state == "pending"
    assert _bank(funds, bank)[1] == 700 * YUAN  # the bank booked it
    today = shanghai_day(now_us())
    gap = funds.reconcile(today, by="ops")
    assert gap.state == "breaks"
    kinds = {b["kind"] for b in gap.breaks}
    assert kinds == {"in_transit", "balance"}
    assert funds.deposit(owner=STEEL, amount_fen=700 * YUAN, key="d", by="steel").id == waiting.id
    for _ in range(2):
        funds.resolve_pending(by="ops")
    assert _cash(funds)[0] == 700 * YUAN
    closed = funds.reconcile(today, by="ops")
    assert (closed.state, closed.breaks) == ("balanced", [])
    assert closed.bank_balance_fen == closed.ledger_balance_fen == closed.clients_total_fen


def test_a_queued_withdrawal_completes_after_the_banks_run(funds: Funds, bank):
    funds.deposit(owner=STEEL, amount_fen=300 * YUAN, key="d", by="steel")
    bank.faults.append("queue")
    queued = funds.withdraw(owner=STEEL, amount_fen=300 * YUAN, key="w", by="steel")
    assert (queued.state, queued.code) == ("pending", "BANK_QUEUED")
    assert _cash(funds) == (300 * YUAN, 0)  # held, not gone
    assert funds.resolve_pending(by="ops")[0].state == "pending"
    assert bank.process_queue() == 1
    assert funds.resolve_pending(by="ops")[0].state == "done"
    assert _cash(funds) == (0, 0)
    assert _bank(funds, bank) == (10_000_000 * YUAN, 0)


def test_a_crash_after_the_bank_booked_is_recovered_once(funds: Funds, bank, monkeypatch):
    """Fault injection: the process dies between the bank's answer and the ledger."""

    def crash(*_args, **_kwargs):
        raise SystemExit("killed")

    with monkeypatch.context() as m:
        m.setattr(Funds, "_apply", crash)
        with pytest.raises(SystemExit):
            funds.deposit(owner=STEEL, amount_fen=900 * YUAN, key="d", by="steel")
    [pending] = funds.transfers(STEEL)
    assert pending.state == "pending"
    assert _cash(funds) == (0, 0)
    restarted = Funds(funds.engine, Ledger(funds.engine), bank)
    assert [t.state for t in restarted.resolve_pending(by="ops")] == ["done"]
    assert restarted.resolve_pending(by="ops") == []
    assert _cash(funds)[0] == 900 * YUAN


def test_reconciliation_finds_client_cash_the_bank_does_not_back(funds: Funds, bank):
    funds.deposit(owner=STEEL, amount_fen=100 * YUAN, key="d", by="steel")
    ledger = funds.ledger
    mint = ledger.open_account("somewhere", "CNY", "issuer", AccountFlags.ISSUER)
    steel = ledger.open_account(STEEL, "CNY")
    ledger.post(Batch("x", "mint", [T.move(mint.id, steel.id, "CNY", 5 * YUAN, "not a deposit")]))
    found = funds.reconcile(shanghai_day(now_us()), by="ops")
    assert found.state == "breaks"
    assert found.breaks == [
        {"kind": "unbacked", "clients_fen": 105 * YUAN, "mirror_fen": 100 * YUAN}
    ]
    with pytest.raises(FundsRefusedError):
        funds.reconcile("30 November", by="ops")


def test_bad_amounts_and_missing_bindings_are_refused(engine: sa.Engine, funds: Funds):
    for amount in (0, -5, 10**14):
        with pytest.raises(FundsRefusedError) as bad:
            funds.deposit(owner=STEEL, amount_fen=amount, key=f"k{amount}", by="steel")
        assert bad.value.code == "BAD_AMOUNT"
    admit(engine, "member:fund", "绿色投资基金")
    with pytest.raises(FundsRefusedError) as unbound:
        funds.deposit(owner="member:fund", amount_fen=1, key="k", by="fund")
    assert unbound.value.code == "NO_BANK_BINDING"
    assert funds.transfers() == []


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["deposit", "withdrawal"]),
            st.integers(min_value=1, max_value=5_000 * YUAN),
            st.sampled_from([None, *FAULTS]),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_whatever_the_bank_does_money_is_neither_made_nor_lost(funds: Funds, bank, steps):
    """After the bank's run and one recovery pass, the member's money at the bank and on the
    ledger adds up to what it was, and the bank's client-funds account backs every fen."""
    start = bank.balance(STEEL_BANK_NO) + _cash(funds)[0]
    for direction, amount, fault in steps:
        if fault is not None:
            bank.faults.append(fault)
        key = uuid.uuid4().hex
        try:
            if direction == "deposit":
                funds.deposit(owner=STEEL, amount_fen=amount, key=key, by="steel")
            else:
                funds.withdraw(owner=STEEL, amount_fen=amount, key=key, by="steel")
        except FundsRefusedError as refused:
            code = refused.code
            assert code == "INSUFFICIENT_FUNDS"  # a refusal is one allowed outcome
        bank.faults.clear()
        balance, available = _cash(funds)
        assert 0 <= available <= balance
    bank.process_queue()
    assert all(t.state != "pending" for t in funds.resolve_pending(by="ops"))
    assert bank.balance(STEEL_BANK_NO) + _cash(funds)[0] == start
    assert bank.balance(bank.client_funds_no) == -_mirror(funds) == _cash(funds)[0]


def test_a_bank_account_is_bound_to_one_trading_account_only(funds: Funds, bank):
    """Issue 16: a second applicant under the steel works' name bound the works' bank account
    and drew money from it. The name is now the KYC record's: the impostor cannot take the
    works' name (so cannot open an account in it), and under its own name the works' bank
    account is not same-name."""
    with pytest.raises(ApplicationRefusedError) as named:
        admit(funds.engine, "ent:impostor", NAME, n=424242)
    assert named.value.code == "ENTITY_NAME_MISMATCH"
    admit(funds.engine, "ent:impostor", "冒名公司", n=424242)
    with pytest.raises(FundsRefusedError) as refused:
        funds.bind(owner="ent:impostor", account_no=STEEL_BANK_NO, holder=NAME, by="impostor")
    assert refused.value.code == "HOLDER_MISMATCH"
    assert funds.binding_of("ent:impostor") is None
    with pytest.raises(FundsRefusedError):
        funds.deposit(owner="ent:impostor", amount_fen=100 * YUAN, key="d", by="impostor")
    assert bank.balance(STEEL_BANK_NO) == 10_000_000 * YUAN


def test_one_bank_account_serves_one_trading_account_even_between_namesakes(
    engine: sa.Engine, bank: SimulatedBank
):
    # Individuals may share a name (KYC keeps no name to one identity number): the second
    # namesake still cannot bind the first one's bank account.
    members = Members(engine)
    for owner, number in (("person:a", "11010519491231002X"), ("person:b", "110105194912310038")):
        account = members.apply(
            owner=owner, kind="individual", entity_name="王伟", identifier=number, by=owner
        )
        members.review(account.id, approve=True, reason=None, by="kyc")
    bank.open_account("6222020200000000555", "王伟", 1_000 * YUAN)
    funds = Funds(engine, Ledger(engine), bank)
    funds.bind(owner="person:a", account_no="6222020200000000555", holder="王伟", by="a")
    with pytest.raises(FundsRefusedError) as taken:
        funds.bind(owner="person:b", account_no="6222020200000000555", holder="王伟", by="b")
    assert taken.value.code == "BANK_ACCOUNT_TAKEN"
