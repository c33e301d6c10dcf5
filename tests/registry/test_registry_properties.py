"""Property: whatever issuances, transfers, approvals, rejections, surrenders and cancellations
happen, in any order and with retries, blocks and ledger agree and every serial from 1 to the
number issued is in exactly one block (held ones adding up to issued minus retired)."""

from __future__ import annotations

import contextlib
from itertools import count
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from carbonbook.db.engine import make_engine
from carbonbook.db.schema import registry_blocks
from carbonbook.registry import errors
from carbonbook.registry.compliance import Compliance
from carbonbook.registry.service import AWAITING_APPROVAL, HELD, Registry
from tests.conftest import DATABASES, database

if TYPE_CHECKING:
    from pathlib import Path

ASSETS = ["CEA-2023", "CCER-2024"]
WHO = st.integers(0, 2)
QUANTITY = st.integers(1, 400)


@pytest.mark.parametrize("backend", DATABASES)
def test_blocks_and_ledger_always_agree(backend: str, tmp_path: Path) -> None:
    examples = 12 if backend == "sqlite" else 6
    with database(backend, tmp_path) as url:
        engine = make_engine(url)
        try:
            _run(engine, examples)
        finally:
            engine.dispose()


def _held(engine: sa.Engine, asset: str) -> int:
    size = registry_blocks.c.serial_end - registry_blocks.c.serial_start + 1
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(size), 0)).where(
                    registry_blocks.c.asset == asset, registry_blocks.c.state == HELD
                )
            ).scalar_one()
        )


def _run(engine: sa.Engine, examples: int) -> None:
    counter = count()

    class Machine(RuleBasedStateMachine):
        @initialize()
        def start(self) -> None:
            # Examples share one database: each has its own holders and counts from where the
            # previous example left the registry.
            run = next(counter)
            self.holders = [f"ent:{run}:{name}" for name in "abc"]
            self.registry = Registry(engine)
            self.compliance = Compliance(self.registry)
            self.base = {asset: _held(engine, asset) for asset in ASSETS}
            self.issued = dict.fromkeys(ASSETS, 0)
            self.retired = dict.fromkeys(ASSETS, 0)
            for owner in self.holders:
                self.compliance.set_obligation("national-2023", owner, 10_000, source="t", by="r")
            self.registry.trust(self.holders[0], self.holders[1], by="u1")

        @rule(to=WHO, asset=st.sampled_from(ASSETS), quantity=QUANTITY)
        def issue(self, to: int, asset: str, quantity: int) -> None:
            unit, vintage = asset.rsplit("-", 1)
            key = f"i{next(counter)}"
            for _ in range(2):  # a retry issues nothing more
                self.registry.issue(
                    unit_type=unit,
                    vintage=int(vintage),
                    to_owner=self.holders[to],
                    quantity=quantity,
                    key=key,
                    by="regulator",
                )
            self.issued[asset] += quantity

        @rule(src=WHO, dst=WHO, asset=st.sampled_from(ASSETS), quantity=QUANTITY)
        def transfer(self, src: int, dst: int, asset: str, quantity: int) -> None:
            with contextlib.suppress(errors.InsufficientUnitsError, errors.SameAccountError):
                self.registry.transfer(
                    from_owner=self.holders[src],
                    to_owner=self.holders[dst],
                    asset=asset,
                    quantity=quantity,
                    key=f"t{next(counter)}",
                    by="u1",
                )

        @rule(approve=st.booleans())
        def decide(self, approve: bool) -> None:
            waiting = [
                op
                for op in self.registry.operations(awaiting=True)
                if op.from_owner in self.holders
            ]
            if not waiting:
                return
            op = waiting[-1]
            if approve:
                self.registry.approve(op.id, approver_owner=str(op.from_owner), by="u2")
            else:
                self.registry.reject(op.id, approver_owner=str(op.from_owner), by="u2", reason="no")

        @rule(who=WHO, asset=st.sampled_from(ASSETS), quantity=QUANTITY, cancel=st.booleans())
        def retire(self, who: int, asset: str, quantity: int, cancel: bool) -> None:
            holder = self.holders[who]
            refusals = (
                errors.InsufficientUnitsError,
                errors.OffsetCapExceededError,
                errors.OverSurrenderError,
            )
            try:
                if cancel:
                    self.registry.cancel(
                        owner=holder,
                        asset=asset,
                        quantity=quantity,
                        beneficiary="b",
                        reason="r",
                        key=f"c{next(counter)}",
                        by="u1",
                    )
                else:
                    self.compliance.surrender(
                        "national-2023", holder, asset, quantity, key=f"s{next(counter)}", by="u1"
                    )
            except refusals:
                return
            self.retired[asset] += quantity

        @invariant()
        def agree(self) -> None:
            assert self.registry.verify() == []
            for asset in ASSETS:
                expected = self.base[asset] + self.issued[asset] - self.retired[asset]
                assert _held(engine, asset) == expected
            for op in self.registry.operations(awaiting=True):
                assert op.state == AWAITING_APPROVAL

    Machine.TestCase.settings = settings(
        max_examples=examples,
        stateful_step_count=15,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    Machine.TestCase().runTest()
