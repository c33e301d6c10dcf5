"""Posting batches: what moves, what is refused, and that a refusal changes nothing."""

from __future__ import annotations

import pytest

from carbonbook.ledger import AccountFlags, Batch, Ledger, errors
from carbonbook.ledger import TransferRequest as T
from carbonbook.ledger.service import Account


@pytest.fixture
def book(ledger: Ledger) -> tuple[Ledger, Account, Account, Account]:
    issuer = ledger.open_account("bank", "CNY", "issuer", AccountFlags.ISSUER)
    alice = ledger.open_account("alice", "CNY")
    bob = ledger.open_account("bob", "CNY")
    ledger.post(Batch("test", "fund", [T.move(issuer.id, alice.id, "CNY", 10_000, "deposit")]))
    return ledger, issuer, alice, bob


def snapshot(ledger: Ledger, *accounts: Account) -> tuple[object, ...]:
    return (
        tuple(ledger.balance(a.id) for a in accounts),
        ledger.journal_length(),
        ledger.asset_totals(),
    )


def test_a_transfer_moves_value_from_debit_to_credit(book):
    ledger, issuer, alice, bob = book
    ledger.post(Batch("test", "pay", [T.move(alice.id, bob.id, "CNY", 2_500, "payment")]))
    assert ledger.balance(alice.id).balance == 7_500
    assert ledger.balance(bob.id).balance == 2_500
    assert ledger.balance(issuer.id).balance == -10_000
    assert ledger.asset_totals() == {"CNY": 0}


def test_a_replayed_batch_returns_the_first_result_and_changes_nothing(book):
    ledger, _, alice, bob = book
    batch = Batch("test", "pay", [T.move(alice.id, bob.id, "CNY", 2_500, "payment")])
    first = ledger.post(batch)
    before = snapshot(ledger, alice, bob)
    again = ledger.post(batch)
    assert again.replayed
    assert (again.batch_id, again.seq, again.first_transfer_id) == (
        first.batch_id,
        first.seq,
        first.first_transfer_id,
    )
    assert snapshot(ledger, alice, bob) == before


def test_it_refuses_a_reused_key_with_different_content(book):
    ledger, _, alice, bob = book
    ledger.post(Batch("test", "pay", [T.move(alice.id, bob.id, "CNY", 2_500, "payment")]))
    before = snapshot(ledger, alice, bob)
    with pytest.raises(errors.IdempotencyConflictError):
        ledger.post(Batch("test", "pay", [T.move(alice.id, bob.id, "CNY", 2_501, "payment")]))
    assert snapshot(ledger, alice, bob) == before


def test_the_same_key_from_another_issuer_is_another_batch(book):
    ledger, _, alice, bob = book
    ledger.post(Batch("a", "k", [T.move(alice.id, bob.id, "CNY", 1, "x")]))
    result = ledger.post(Batch("b", "k", [T.move(alice.id, bob.id, "CNY", 1, "x")]))
    assert not result.replayed
    assert ledger.balance(bob.id).balance == 2


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda a, b: T.move(a.id, b.id, "CNY", 10_001, "overdraw"), errors.InsufficientFundsError),
        (lambda a, b: T.move(a.id, b.id, "CNY", 0, "zero"), errors.BadAmountError),
        (lambda a, b: T.move(a.id, b.id, "CNY", -5, "negative"), errors.BadAmountError),
        (lambda a, b: T(a.id, b.id, "CNY", 1.5, "float"), errors.BadAmountError),  # type: ignore[arg-type]
        (lambda a, b: T.move(a.id, a.id, "CNY", 1, "self"), errors.SameAccountError),
        (lambda a, b: T.move(a.id, 999_999, "CNY", 1, "ghost"), errors.UnknownAccountError),
        (lambda a, b: T.move(a.id, b.id, "POINT", 1, "mixed"), errors.AssetMismatchError),
    ],
)
def test_a_bad_transfer_refuses_its_whole_batch(book, make, error):
    ledger, _, alice, bob = book
    before = snapshot(ledger, alice, bob)
    good = T.move(alice.id, bob.id, "CNY", 100, "fine")
    with pytest.raises(error):
        ledger.post(Batch("test", "bad", [good, make(alice, bob)]))
    assert snapshot(ledger, alice, bob) == before


def test_it_refuses_transfers_touching_a_frozen_account(book):
    ledger, _, alice, bob = book
    ledger.set_frozen(bob.id, frozen=True)
    before = snapshot(ledger, alice, bob)
    with pytest.raises(errors.AccountFrozenError):
        ledger.post(Batch("test", "to-frozen", [T.move(alice.id, bob.id, "CNY", 1, "x")]))
    assert snapshot(ledger, alice, bob) == before
    ledger.set_frozen(bob.id, frozen=False)
    ledger.post(Batch("test", "to-thawed", [T.move(alice.id, bob.id, "CNY", 1, "x")]))
    assert ledger.balance(bob.id).balance == 1


def test_a_later_transfer_may_spend_what_an_earlier_one_credited(book):
    ledger, _, alice, bob = book
    carol = ledger.open_account("carol", "CNY")
    ledger.post(
        Batch(
            "test",
            "chain",
            [
                T.move(alice.id, bob.id, "CNY", 10_000, "a"),
                T.move(bob.id, carol.id, "CNY", 10_000, "b"),
            ],
        )
    )
    assert ledger.balance(carol.id).balance == 10_000


def test_a_transfer_key_used_by_an_earlier_batch_refuses_the_new_batch(book):
    ledger, _, alice, bob = book
    ledger.post(Batch("test", "b1", [T.move(alice.id, bob.id, "CNY", 1, "x", key="event-1")]))
    before = snapshot(ledger, alice, bob)
    with pytest.raises(errors.DuplicateTransferKeyError) as refused:
        ledger.post(
            Batch(
                "test",
                "b2",
                [
                    T.move(alice.id, bob.id, "CNY", 1, "x", key="event-2"),
                    T.move(alice.id, bob.id, "CNY", 1, "x", key="event-1"),
                ],
            )
        )
    assert "event-1" in refused.value.message
    assert snapshot(ledger, alice, bob) == before
    assert ledger.existing_transfer_keys("test", ["event-1", "event-2"]) == {"event-1"}


def test_two_phase_reserves_then_posts_part_and_releases_the_rest(book):
    ledger, _, alice, bob = book
    hold = ledger.post(Batch("test", "hold", [T.reserve(alice.id, bob.id, "CNY", 6_000, "order")]))
    assert ledger.balance(alice.id).available == 4_000
    with pytest.raises(errors.InsufficientFundsError):
        ledger.post(Batch("test", "too-much", [T.move(alice.id, bob.id, "CNY", 4_001, "x")]))
    ledger.post(Batch("test", "fill", [T.post_pending(hold.first_transfer_id, 2_500)]))
    alice_now = ledger.balance(alice.id)
    assert (alice_now.balance, alice_now.held, alice_now.available) == (7_500, 0, 7_500)
    assert ledger.balance(bob.id).balance == 2_500


def test_a_voided_reservation_moves_nothing_and_cannot_be_posted(book):
    ledger, _, alice, bob = book
    hold = ledger.post(Batch("test", "hold", [T.reserve(alice.id, bob.id, "CNY", 6_000, "order")]))
    ledger.post(Batch("test", "void", [T.void_pending(hold.first_transfer_id)]))
    assert ledger.balance(alice.id).available == 10_000
    with pytest.raises(errors.PendingResolvedError):
        ledger.post(Batch("test", "late", [T.post_pending(hold.first_transfer_id)]))
    hold2 = ledger.post(Batch("test", "h2", [T.reserve(alice.id, bob.id, "CNY", 10, "o")]))
    with pytest.raises(errors.BadAmountError):
        ledger.post(Batch("test", "over", [T.post_pending(hold2.first_transfer_id, 11)]))


def test_balances_as_of_a_past_instant_ignore_later_transfers(book):
    ledger, _, alice, bob = book
    first = ledger.post(Batch("test", "p1", [T.move(alice.id, bob.id, "CNY", 100, "x")]))
    hold = ledger.post(Batch("test", "h", [T.reserve(alice.id, bob.id, "CNY", 50, "o")]))
    ledger.post(Batch("test", "p2", [T.move(alice.id, bob.id, "CNY", 200, "x")]))
    ledger.post(Batch("test", "v", [T.void_pending(hold.first_transfer_id)]))
    then = ledger.balance(alice.id, as_of=first.created_at)
    assert (then.balance, then.held) == (9_900, 0)
    during = ledger.balance(alice.id, as_of=hold.created_at)
    assert (during.balance, during.held) == (9_900, 50)
    assert ledger.balance(alice.id).balance == 9_700


def test_a_statement_lists_transfers_with_the_running_balance(book):
    ledger, _, alice, bob = book
    ledger.post(Batch("test", "p1", [T.move(alice.id, bob.id, "CNY", 100, "coffee")]))
    ledger.post(Batch("test", "p2", [T.move(bob.id, alice.id, "CNY", 40, "refund")]))
    statement = ledger.statement(alice.id)
    assert [(line.reason, line.amount, line.balance_after) for line in statement.lines] == [
        ("deposit", 10_000, 10_000),
        ("coffee", -100, 9_900),
        ("refund", 40, 9_940),
    ]
    assert statement.closing_balance == ledger.balance(alice.id).balance
