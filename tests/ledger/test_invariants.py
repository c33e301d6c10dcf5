"""The ledger's invariants under any sequence of operations (hypothesis, both databases).

- per asset, all balances sum to zero (issuers hold the negative);
- no non-issuer balance below zero, and available = balance - held >= 0;
- replaying an idempotency key returns the first result and changes nothing;
- two-phase transfers never overspend: posts never exceed what was reserved;
- the journal verifies and replaying it rebuilds every balance.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from carbonbook.db.engine import make_engine
from carbonbook.ledger import AccountFlags, Batch, Ledger
from carbonbook.ledger import TransferRequest as T
from carbonbook.ledger.audit import verify
from carbonbook.ledger.errors import LedgerError
from tests.conftest import DATABASES, database

N_ACCOUNTS = 4


def make_machine(backend: str, tmp_path: Path) -> type[RuleBasedStateMachine]:
    class LedgerMachine(RuleBasedStateMachine):
        """A model (plain dicts) runs beside the real ledger; they must always agree."""

        def __init__(self) -> None:
            super().__init__()
            self._db = database(backend, tmp_path / f"m{id(self)}")
            (tmp_path / f"m{id(self)}").mkdir()
            self.url = self._db.__enter__()
            self.engine = make_engine(self.url)
            self.ledger = Ledger(self.engine)
            self.ledger.ensure_assets()
            self.balances: dict[int, int] = {}
            self.held: dict[int, int] = {}
            self.pending: dict[int, tuple[int, int, int]] = {}  # id -> debit, credit, amount
            self.posted: dict[str, tuple[Batch, object]] = {}
            self.n = 0

        def teardown(self) -> None:
            self.engine.dispose()
            self._db.__exit__(None, None, None)

        @initialize()
        def open_accounts(self) -> None:
            self.issuer = self.ledger.open_account("issuer", "POINT", "issuer", AccountFlags.ISSUER)
            self.ids = [self.ledger.open_account(f"p{i}", "POINT").id for i in range(N_ACCOUNTS)]
            for account_id in [self.issuer.id, *self.ids]:
                self.balances[account_id] = 0
                self.held[account_id] = 0

        def _key(self) -> str:
            self.n += 1
            return f"k{self.n}"

        def _post(self, batch: Batch) -> bool:
            try:
                result = self.ledger.post(batch)
            except LedgerError:
                return False
            self.posted[batch.key] = (batch, result)
            return True

        def _available(self, account_id: int) -> int:
            return self.balances[account_id] - self.held[account_id]

        @rule(who=st.integers(0, N_ACCOUNTS - 1), amount=st.integers(1, 500))
        def issue(self, who: int, amount: int) -> None:
            to = self.ids[who]
            assert self._post(
                Batch("t", self._key(), [T.move(self.issuer.id, to, "POINT", amount, "issue")])
            )
            self.balances[self.issuer.id] -= amount
            self.balances[to] += amount

        @rule(
            moves=st.lists(
                st.tuples(
                    st.integers(0, N_ACCOUNTS - 1),
                    st.integers(0, N_ACCOUNTS - 1),
                    st.integers(1, 400),
                ),
                min_size=1,
                max_size=4,
            )
        )
        def transfer_batch(self, moves: list[tuple[int, int, int]]) -> None:
            transfers = [
                T.move(self.ids[a], self.ids[b], "POINT", amt, "move") for a, b, amt in moves
            ]
            # The model: apply in order; any overdraft or self-transfer refuses the whole batch.
            trial_b = dict(self.balances)
            ok = True
            for a, b, amt in moves:
                if a == b:
                    ok = False
                    break
                trial_b[self.ids[a]] -= amt
                trial_b[self.ids[b]] += amt
                if trial_b[self.ids[a]] - self.held[self.ids[a]] < 0:
                    ok = False
                    break
            accepted = self._post(Batch("t", self._key(), transfers))
            assert accepted == ok
            if ok:
                self.balances = trial_b

        @rule(
            a=st.integers(0, N_ACCOUNTS - 1),
            b=st.integers(0, N_ACCOUNTS - 1),
            amount=st.integers(1, 400),
        )
        def reserve(self, a: int, b: int, amount: int) -> None:
            debit, credit = self.ids[a], self.ids[b]
            batch = Batch("t", self._key(), [T.reserve(debit, credit, "POINT", amount, "order")])
            ok = a != b and self._available(debit) >= amount
            assert self._post(batch) == ok
            if ok:
                result = self.posted[batch.key][1]
                self.pending[result.first_transfer_id] = (debit, credit, amount)  # type: ignore[attr-defined]
                self.held[debit] += amount

        @precondition(lambda self: self.pending)
        @rule(data=st.data(), part=st.integers(0, 400), void=st.booleans())
        def resolve(self, data: st.DataObject, part: int, void: bool) -> None:
            pid = data.draw(st.sampled_from(sorted(self.pending)))
            debit, credit, amount = self.pending[pid]
            if void:
                assert self._post(Batch("t", self._key(), [T.void_pending(pid)]))
                self.held[debit] -= amount
                del self.pending[pid]
                return
            ok = part <= amount
            assert self._post(Batch("t", self._key(), [T.post_pending(pid, part)])) == ok
            if ok:
                moved = part or amount
                self.held[debit] -= amount
                self.balances[debit] -= moved
                self.balances[credit] += moved
                del self.pending[pid]

        @precondition(lambda self: self.posted)
        @rule(data=st.data())
        def replay(self, data: st.DataObject) -> None:
            key = data.draw(st.sampled_from(sorted(self.posted)))
            batch, first = self.posted[key]
            again = self.ledger.post(batch)
            assert again.replayed
            assert again.batch_id == first.batch_id  # type: ignore[attr-defined]

        @invariant()
        def books_agree_with_the_model(self) -> None:
            if not self.balances:
                return
            for account_id, want in self.balances.items():
                got = self.ledger.balance(account_id)
                assert (got.balance, got.held) == (want, self.held[account_id])
                if account_id != self.issuer.id:
                    assert got.balance >= 0
                    assert got.available >= 0
            assert self.ledger.asset_totals().get("POINT", 0) == 0

        def check_journal(self) -> None:
            report = verify(self.engine)
            assert report.ok, report.problems

    return LedgerMachine


@pytest.mark.parametrize("backend", DATABASES)
def test_ledger_invariants_hold_for_any_sequence_of_operations(
    backend: str, tmp_path: Path
) -> None:
    machine = make_machine(backend, tmp_path)
    original_teardown = machine.teardown

    def teardown(self: RuleBasedStateMachine) -> None:
        self.check_journal()  # type: ignore[attr-defined]
        original_teardown(self)

    machine.teardown = teardown  # type: ignore[method-assign]
    runner = machine.TestCase
    runner.settings = settings(
        max_examples=25 if backend == "sqlite" else 15,
        stateful_step_count=30,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    runner().runTest()
