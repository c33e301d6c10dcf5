"""The holder gate: units land only on holders that exist and whose kind may hold them, and no
name or key carries control characters. Issuance, transfer, surrender and cancellation all go
through it; only it posts the registry's unit moves to the ledger."""

from __future__ import annotations

import ast
import contextlib
from itertools import count
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from carbonbook.db.engine import make_engine
from carbonbook.db.schema import account_balances
from carbonbook.errors import DomainError
from carbonbook.identity.model import Role
from carbonbook.identity.service import Identity
from carbonbook.ledger import AccountFlags
from carbonbook.registry import errors
from carbonbook.registry.compliance import Compliance
from carbonbook.registry.gate import RegisteredHolders
from carbonbook.registry.rules import load_rules
from carbonbook.registry.service import Registry
from tests.conftest import DATABASES, database


def _platform(engine: sa.Engine) -> Registry:
    identity = Identity(engine)
    identity.register("steel", "correct horse battery", Role.ENTERPRISE, owner="entity:steel")
    identity.register("chen", "correct horse battery", Role.PERSON, owner="person:chen")
    return Registry(engine, holders=RegisteredHolders())


def _held(registry: Registry, owner: str) -> dict[str, int]:
    return {h.asset: h.balance for h in registry.holdings(owner)}


def test_allowances_are_never_issued_or_transferred_to_a_natural_person(engine: sa.Engine):
    registry = _platform(engine)
    with pytest.raises(errors.HolderMayNotHoldError):
        registry.issue(
            unit_type="CEA", vintage=2024, to_owner="person:chen", quantity=5, key="i", by="mee"
        )
    registry.issue(
        unit_type="CEA", vintage=2024, to_owner="entity:steel", quantity=10, key="i2", by="mee"
    )
    registry.trust("entity:steel", "person:chen", by="steel")
    with pytest.raises(errors.HolderMayNotHoldError):
        registry.transfer(
            from_owner="entity:steel",
            to_owner="person:chen",
            asset="CEA-2024",
            quantity=3,
            key="t",
            by="steel",
        )
    assert _held(registry, "entity:steel") == {"CEA-2024": 10}
    assert _held(registry, "person:chen") == {}
    # A person may hold (and cancel) carbon-inclusion credits.
    registry.issue(
        unit_type="PCER-BJ", vintage=2025, to_owner="person:chen", quantity=1, key="p", by="mee"
    )
    assert _held(registry, "person:chen") == {"PCER-BJ-2025": 1}
    assert registry.verify() == []


def test_units_never_go_to_a_holder_nobody_registered(engine: sa.Engine):
    registry = _platform(engine)
    with pytest.raises(errors.UnknownHolderError) as refused:
        registry.issue(
            unit_type="CEA", vintage=2024, to_owner="entity:nobody", quantity=5, key="i", by="m"
        )
    assert refused.value.code == "UNKNOWN_HOLDER"
    registry.issue(
        unit_type="CEA", vintage=2024, to_owner="entity:steel", quantity=10, key="i2", by="m"
    )
    with pytest.raises(errors.UnknownHolderError):
        registry.transfer(
            from_owner="entity:steel",
            to_owner="entity:nobody",
            asset="CEA-2024",
            quantity=3,
            key="t",
            by="steel",
        )
    assert _held(registry, "entity:steel") == {"CEA-2024": 10}
    assert registry.operations("entity:nobody") == []


@pytest.mark.parametrize(
    ("to", "key"), [("entity:steel\x00", "k"), ("entity:st\u202eeel", "k"), ("entity:steel", "k\n")]
)
def test_names_and_keys_with_control_characters_are_refused(
    engine: sa.Engine, to: str, key: str
) -> None:
    registry = Registry(engine)
    with pytest.raises(errors.BadTextError):
        registry.issue(unit_type="CEA", vintage=2024, to_owner=to, quantity=1, key=key, by="m")
    assert registry.operations() == []


def test_only_the_gate_module_posts_the_registrys_unit_moves_to_the_ledger():
    package = Path(__file__).resolve().parents[2] / "src" / "carbonbook" / "registry"
    posting = [
        f"{path.name}:{node.lineno}"
        for path in sorted(package.glob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in {"post", "post_in", "post_many", "post_many_in"}
        # `self.gate.post(...)` asks the gate; anything else asks the ledger
        and not (isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "gate")
    ]
    assert posting
    assert all(p.startswith("gate.py:") for p in posting), posting


# -- the property: whatever is asked, no unit lands on a holder that may not hold it ------------

# Slots of holders, renamed per example (the examples share one database): who is registered
# with which role, and who is not registered at all.
SLOTS: list[tuple[str, Role | None]] = [
    ("entity:steel", Role.ENTERPRISE),
    ("entity:bus", Role.ENTERPRISE),
    ("person:chen", Role.PERSON),
    ("entity:nobody", None),
    ("member:fund", Role.MEMBER),
    ("regulator:mee", Role.REGULATOR),
    ("entity:posing", Role.PERSON),  # a natural person under an entity-like name
]
WHO = st.integers(0, len(SLOTS) - 1)
UNITS = [("CEA", 2024), ("CCER", 2024), ("PCER-BJ", 2025)]


@pytest.mark.parametrize("backend", DATABASES)
def test_no_unit_ever_lands_on_a_holder_that_may_not_hold_it(backend: str, tmp_path: Path):
    examples = 12 if backend == "sqlite" else 6
    with database(backend, tmp_path) as url:
        engine = make_engine(url)
        try:
            _run(engine, examples)
        finally:
            engine.dispose()


def _run(engine: sa.Engine, examples: int) -> None:
    keys = count()
    rules = load_rules()

    class Machine(RuleBasedStateMachine):
        @initialize()
        def fresh(self) -> None:
            run = next(keys)
            self.holders = [f"{owner}-{run}" for owner, _ in SLOTS]
            self.roles: dict[str, Role] = {}
            identity = Identity(engine)
            for owner, (_, role) in zip(self.holders, SLOTS, strict=True):
                if role is not None:
                    name = owner.replace(":", "-")
                    identity.register(name, "correct horse battery", role, owner=owner)
                    self.roles[owner] = role
            self.registry = Registry(engine, holders=RegisteredHolders())
            Compliance(self.registry).set_obligation(
                "national-2024", self.holders[0], 50, source="report:1", by="mee"
            )

        @rule(to=WHO, unit=st.sampled_from(UNITS), qty=st.integers(1, 50))
        def issue(self, to: int, unit: tuple[str, int], qty: int) -> None:
            with contextlib.suppress(DomainError):
                self.registry.issue(
                    unit_type=unit[0],
                    vintage=unit[1],
                    to_owner=self.holders[to],
                    quantity=qty,
                    key=f"i{next(keys)}",
                    by="mee",
                )

        @rule(
            source=WHO,
            to=WHO,
            unit=st.sampled_from(UNITS),
            qty=st.integers(1, 50),
            trusted=st.booleans(),
            approver=st.sampled_from(["second", "mee", None]),
        )
        def transfer(
            self,
            source: int,
            to: int,
            unit: tuple[str, int],
            qty: int,
            trusted: bool,
            approver: str | None,
        ) -> None:
            asset = f"{unit[0]}-{unit[1]}"
            src, dst = self.holders[source], self.holders[to]
            with contextlib.suppress(DomainError):
                if trusted:
                    self.registry.trust(src, dst, by="rep")
                op = self.registry.transfer(
                    from_owner=src,
                    to_owner=dst,
                    asset=asset,
                    quantity=qty,
                    key=f"t{next(keys)}",
                    by="rep",
                )
                if approver is not None and op.state_name == "awaiting_approval":
                    self.registry.approve(
                        op.id, approver_owner=src, by=approver, regulator=approver == "mee"
                    )

        @rule(owner=WHO, unit=st.sampled_from(UNITS), qty=st.integers(1, 9))
        def surrender(self, owner: int, unit: tuple[str, int], qty: int) -> None:
            with contextlib.suppress(DomainError):
                Compliance(self.registry).surrender(
                    "national-2024",
                    self.holders[owner],
                    f"{unit[0]}-{unit[1]}",
                    qty,
                    key=f"s{next(keys)}",
                    by="e",
                )

        @rule(owner=WHO, unit=st.sampled_from(UNITS), qty=st.integers(1, 9))
        def cancel(self, owner: int, unit: tuple[str, int], qty: int) -> None:
            with contextlib.suppress(DomainError):
                self.registry.cancel(
                    owner=self.holders[owner],
                    asset=f"{unit[0]}-{unit[1]}",
                    quantity=qty,
                    beneficiary="someone",
                    reason="voluntary",
                    key=f"c{next(keys)}",
                    by="e",
                )

        @invariant()
        def every_holding_is_allowed(self) -> None:
            with engine.connect() as conn:
                rows = conn.execute(
                    sa.select(
                        account_balances.c.owner,
                        account_balances.c.asset,
                        account_balances.c.balance,
                        account_balances.c.held,
                        account_balances.c.flags,
                    ).where(account_balances.c.owner.in_(self.holders))
                ).all()
            for row in rows:
                if row.flags & AccountFlags.ISSUER or row.balance == 0:
                    continue
                unit, _ = rules.split_asset(row.asset)
                assert row.owner in self.roles, row
                role = self.roles[row.owner]
                kind = "person" if role == Role.PERSON else row.owner.split(":")[0]
                assert rules.holder_kinds[kind].may_hold_unit(unit), row
            assert self.registry.verify() == []

    Machine.TestCase.settings = settings(
        max_examples=examples,
        stateful_step_count=12,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    Machine.TestCase().runTest()
