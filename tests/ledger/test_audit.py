"""`audit verify` names every row edited, deleted or reordered behind the ledger's back."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from carbonbook.ledger import AccountFlags, Batch, Ledger
from carbonbook.ledger import TransferRequest as T
from carbonbook.ledger.audit import verify


@pytest.fixture
def busy(ledger: Ledger) -> Ledger:
    issuer = ledger.open_account("bank", "CNY", "issuer", AccountFlags.ISSUER)
    alice = ledger.open_account("alice", "CNY")
    bob = ledger.open_account("bob", "CNY")
    ledger.post(Batch("t", "b1", [T.move(issuer.id, alice.id, "CNY", 1_000, "deposit")]))
    ledger.post(
        Batch(
            "t",
            "b2",
            [T.move(alice.id, bob.id, "CNY", 100, "a"), T.move(alice.id, bob.id, "CNY", 50, "b")],
        )
    )
    hold = ledger.post(Batch("t", "b3", [T.reserve(alice.id, bob.id, "CNY", 300, "order")]))
    ledger.post(Batch("t", "b4", [T.post_pending(hold.first_transfer_id, 200)]))
    ledger.post(Batch("t", "b5", [T.reserve(bob.id, alice.id, "CNY", 20, "order")]))
    return ledger


def run_sql(ledger: Ledger, sql: str) -> None:
    with ledger.engine.begin() as conn:
        conn.execute(sa.text(sql))


def test_an_untouched_ledger_verifies(busy):
    report = verify(busy.engine)
    assert report.ok, report.problems
    assert (report.batches, report.transfers) == (5, 6)


def test_it_names_an_edited_transfer_row(busy):
    run_sql(busy, "UPDATE transfers SET amount = 101 WHERE reason = 'a'")
    report = verify(busy.engine)
    tid = busy.statement(2).lines[1].transfer_id
    assert f"transfer {tid}: edited (does not match journal entry 2)" in report.problems


def test_it_names_a_deleted_transfer_row(busy):
    run_sql(busy, "DELETE FROM transfers WHERE reason = 'b'")
    report = verify(busy.engine)
    assert any("missing (deleted)" in p for p in report.problems)


def test_it_names_an_inserted_transfer_row(busy):
    run_sql(
        busy,
        "INSERT INTO transfers (id, batch_id, issuer, key, debit_account_id, "
        "credit_account_id, asset, amount, kind, pending_id, reason, meta, created_at) "
        "VALUES (900000, 1, 't', NULL, 1, 2, 'CNY', 5, 0, NULL, 'forged', NULL, 0)",
    )
    report = verify(busy.engine)
    assert "transfer 900000: belongs to no journal entry (inserted?)" in report.problems


def test_it_names_an_edited_journal_entry(busy):
    run_sql(busy, "UPDATE journal SET key = 'other' WHERE seq = 3")
    problems = verify(busy.engine).problems
    assert any(
        p.startswith("journal: entry 3 (batch") and p.endswith("was edited") for p in problems
    )


def test_it_names_a_deleted_journal_entry(busy):
    run_sql(busy, "DELETE FROM journal WHERE seq = 2")
    problems = verify(busy.engine).problems
    assert "journal: entry 2 is missing (next is 3)" in problems


def test_it_detects_reordered_journal_entries(busy):
    run_sql(busy, "UPDATE journal SET seq = seq + 100 WHERE seq IN (2, 3)")
    run_sql(busy, "UPDATE journal SET seq = 2 WHERE seq = 103")
    run_sql(busy, "UPDATE journal SET seq = 3 WHERE seq = 102")
    problems = verify(busy.engine).problems
    assert any("entry 2" in p for p in problems)


def test_it_names_an_account_whose_balance_was_edited(busy):
    run_sql(
        busy,
        "UPDATE balances SET balance = balance + 1 WHERE account_id IN (SELECT id FROM accounts WHERE owner = 'bob')",
    )
    problems = verify(busy.engine).problems
    assert any(p.startswith("account 3: balance") for p in problems)


def test_it_names_an_account_whose_hold_was_edited(busy):
    run_sql(
        busy,
        "UPDATE balances SET held = 0 WHERE account_id IN (SELECT id FROM accounts WHERE owner = 'bob')",
    )
    problems = verify(busy.engine).problems
    assert any(p.startswith("account 3: held 0") for p in problems)
