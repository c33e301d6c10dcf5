"""The registry: issuance, transfer with serial blocks, second approval, freeze, cancellation.

Every test ends with `verify()` empty: blocks and ledger agree, every serial is in one block.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from carbonbook.db.schema import journal
from carbonbook.registry import errors
from carbonbook.registry.blocks import Block, take_in_turn
from carbonbook.registry.service import AWAITING_APPROVAL, DONE, REJECTED, Registry, Retirement


@pytest.fixture
def registry(engine: sa.Engine) -> Registry:
    return Registry(engine)


def _issue(registry: Registry, to: str, quantity: int, key: str, vintage: int = 2024) -> None:
    registry.issue(
        unit_type="CEA", vintage=vintage, to_owner=to, quantity=quantity, key=key, by="mee"
    )


def _balance(registry: Registry, owner: str, asset: str = "CEA-2024") -> tuple[int, int]:
    for h in registry.holdings(owner):
        if h.asset == asset:
            return h.balance, h.held
    return 0, 0


def test_issuance_is_one_block_of_consecutive_serials(registry: Registry) -> None:
    first = registry.issue(
        unit_type="CEA", vintage=2024, to_owner="ent:steel", quantity=1000, key="k1", by="mee"
    )
    second = registry.issue(
        unit_type="CEA", vintage=2024, to_owner="ent:bus", quantity=500, key="k2", by="mee"
    )
    assert first.serials == [f"CN-CEA-2024-{first.id:06d}-000000001-000001000"]
    assert second.serials == [f"CN-CEA-2024-{second.id:06d}-000001001-000001500"]
    assert _balance(registry, "ent:steel") == (1000, 0)
    assert registry.verify() == []


def test_a_retried_issuance_returns_the_first_and_issues_nothing_more(registry: Registry) -> None:
    first = registry.issue(
        unit_type="CCER", vintage=2024, to_owner="ent:a", quantity=10, key="same", by="mee"
    )
    again = registry.issue(
        unit_type="CCER", vintage=2024, to_owner="ent:a", quantity=10, key="same", by="mee"
    )
    assert again.id == first.id
    assert again.replayed
    assert _balance(registry, "ent:a", "CCER-2024") == (10, 0)
    with pytest.raises(errors.KeyReusedError):
        registry.issue(
            unit_type="CCER", vintage=2024, to_owner="ent:a", quantity=11, key="same", by="mee"
        )


def test_unknown_units_and_bad_quantities_are_refused(registry: Registry) -> None:
    with pytest.raises(errors.UnknownUnitError):
        registry.issue(
            unit_type="XYZ", vintage=2024, to_owner="ent:a", quantity=1, key="k", by="mee"
        )
    for bad in (0, -5, True):
        with pytest.raises(errors.BadQuantityError):
            registry.issue(
                unit_type="CEA", vintage=2024, to_owner="ent:a", quantity=bad, key="k", by="mee"
            )
    assert registry.operations() == []


def test_a_transfer_to_a_trusted_counterparty_splits_the_block(registry: Registry) -> None:
    _issue(registry, "ent:steel", 1000, "i1")
    registry.trust("ent:steel", "ent:bus", by="alice")
    op = registry.transfer(
        from_owner="ent:steel",
        to_owner="ent:bus",
        asset="CEA-2024",
        quantity=300,
        key="t1",
        by="alice",
    )
    assert op.state == DONE
    assert op.serials[0].endswith("-000000001-000000300")
    steel = registry.holdings("ent:steel")[0]
    assert steel.balance == 700
    assert steel.serials[0].endswith("-000000301-000001000")
    assert registry.holdings("ent:bus")[0].serials[0].endswith("-000000001-000000300")
    assert registry.verify() == []


def test_an_untrusted_transfer_waits_for_a_second_person(registry: Registry) -> None:
    _issue(registry, "ent:steel", 1000, "i1")
    op = registry.transfer(
        from_owner="ent:steel",
        to_owner="ent:trader",
        asset="CEA-2024",
        quantity=400,
        key="t1",
        by="alice",
    )
    assert op.state == AWAITING_APPROVAL
    assert _balance(registry, "ent:steel") == (1000, 400)  # reserved, not moved
    with pytest.raises(errors.InsufficientUnitsError):
        registry.transfer(
            from_owner="ent:steel",
            to_owner="ent:bus",
            asset="CEA-2024",
            quantity=601,
            key="t2",
            by="alice",
        )
    with pytest.raises(errors.SecondApproverError):
        registry.approve(op.id, approver_owner="ent:steel", by="alice")
    with pytest.raises(errors.UnknownOperationError):  # another entity cannot approve it
        registry.approve(op.id, approver_owner="ent:bus", by="mallory")
    done = registry.approve(op.id, approver_owner="ent:steel", by="bob")
    assert (done.state, done.decided_by) == (DONE, "bob")
    assert _balance(registry, "ent:steel") == (600, 0)
    assert _balance(registry, "ent:trader") == (400, 0)
    with pytest.raises(errors.NotPendingError):
        registry.approve(op.id, approver_owner="ent:steel", by="carol")
    assert registry.verify() == []


def test_a_rejected_transfer_releases_the_reservation(registry: Registry) -> None:
    _issue(registry, "ent:steel", 100, "i1")
    op = registry.transfer(
        from_owner="ent:steel",
        to_owner="ent:x",
        asset="CEA-2024",
        quantity=100,
        key="t",
        by="alice",
    )
    out = registry.reject(op.id, approver_owner="ent:steel", by="bob", reason="wrong buyer")
    assert out.state == REJECTED
    assert out.to_document()["reason"] == "wrong buyer"
    assert _balance(registry, "ent:steel") == (100, 0)
    assert _balance(registry, "ent:x") == (0, 0)
    assert registry.verify() == []


def test_large_transfers_wait_even_to_trusted_counterparties(registry: Registry) -> None:
    above = registry.rules.second_approval_above_t + 1
    _issue(registry, "ent:power", above, "i1")
    registry.trust("ent:power", "ent:grid", by="alice")
    op = registry.transfer(
        from_owner="ent:power",
        to_owner="ent:grid",
        asset="CEA-2024",
        quantity=above,
        key="t",
        by="alice",
    )
    assert op.state == AWAITING_APPROVAL
    assert op.meta["awaiting"] == "above_threshold"


def test_a_frozen_holder_can_neither_send_nor_receive(registry: Registry) -> None:
    _issue(registry, "ent:a", 10, "i1")
    _issue(registry, "ent:b", 10, "i2")
    registry.trust("ent:a", "ent:b", by="alice")
    registry.trust("ent:b", "ent:a", by="bob")
    assert registry.freeze("ent:a", frozen=True, by="mee", reason="investigation") == ["CEA-2024"]
    with pytest.raises(errors.AccountFrozenError):
        registry.transfer(
            from_owner="ent:a",
            to_owner="ent:b",
            asset="CEA-2024",
            quantity=1,
            key="t",
            by="alice",
        )
    with pytest.raises(errors.AccountFrozenError):
        registry.transfer(
            from_owner="ent:b",
            to_owner="ent:a",
            asset="CEA-2024",
            quantity=1,
            key="t",
            by="bob",
        )
    registry.freeze("ent:a", frozen=False, by="mee", reason="cleared")
    registry.transfer(
        from_owner="ent:a",
        to_owner="ent:b",
        asset="CEA-2024",
        quantity=1,
        key="t2",
        by="alice",
    )
    assert _balance(registry, "ent:b") == (11, 0)


def test_voluntary_cancellation_retires_serials_and_gives_a_certificate(
    registry: Registry,
) -> None:
    registry.issue(
        unit_type="CCER", vintage=2024, to_owner="ent:buyer", quantity=50, key="i", by="mee"
    )
    cert = registry.cancel(
        owner="ent:buyer",
        asset="CCER-2024",
        quantity=12,
        beneficiary="北京冬奥志愿者",
        reason="碳中和活动 carbon-neutral event",
        key="c1",
        by="buyer",
    )
    assert cert.quantity == 12
    assert cert.serials[0].endswith("-000000001-000000012")
    assert registry.certificate(cert.id) == cert
    again = registry.cancel(
        owner="ent:buyer",
        asset="CCER-2024",
        quantity=12,
        beneficiary="北京冬奥志愿者",
        reason="碳中和活动 carbon-neutral event",
        key="c1",
        by="buyer",
    )
    assert again.id == cert.id
    assert _balance(registry, "ent:buyer", "CCER-2024") == (38, 0)
    with pytest.raises(errors.InsufficientUnitsError):
        registry.cancel(
            owner="ent:buyer",
            asset="CCER-2024",
            quantity=39,
            beneficiary="x",
            reason="y",
            key="c2",
            by="buyer",
        )
    with pytest.raises(errors.UnknownOperationError):
        registry.certificate("nope")
    assert registry.verify() == []


def test_verify_names_a_block_edited_behind_the_ledgers_back(
    registry: Registry, engine: sa.Engine
) -> None:
    _issue(registry, "ent:a", 100, "i1")
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE registry_blocks SET serial_end = serial_end - 1"))
    problems = registry.verify()
    assert any("holds 100 t but its blocks hold 99" in p for p in problems)
    assert any("CEA-2024: blocks reach serial 99 but 100 were issued" in p for p in problems)


# -- set-wise retirement (the deadline settlement's batch form) ------------------------------


def test_blocks_taken_in_turn_match_takes_made_one_after_the_other() -> None:
    blocks = [Block(1, 10, 1, 40), Block(2, 11, 41, 60), Block(3, 12, 80, 99)]
    first, second, third = take_in_turn(blocks, [30, 25, 5])
    assert (first.whole, first.split) == ((), (blocks[0], 30))
    # The second take sees block 1 shortened to 31-40.
    assert second.whole == (Block(1, 10, 31, 40),)
    assert second.split == (blocks[1], 15)
    assert second.moved_ranges() == [(10, 31, 40), (11, 41, 55)]
    assert third.moved_ranges() == [(11, 56, 60)]
    with pytest.raises(ValueError, match="blocks hold 20 serials, 41 asked"):
        take_in_turn(blocks, [60, 41])


def test_a_set_wise_retirement_moves_serials_as_one_at_a_time_would(
    registry: Registry, engine: sa.Engine
) -> None:
    _issue(registry, "ent:a", 60, "i1")
    _issue(registry, "ent:b", 50, "i2")
    _issue(registry, "ent:a", 40, "i3")  # a holds 1-60 and 111-150
    items = [
        Retirement("ent:a", "CEA-2024", 70, "s1"),
        Retirement("ent:b", "CEA-2024", 50, "s2"),
        Retirement("ent:a", "CEA-2024", 20, "s3"),  # the same account again: continues
    ]
    with engine.connect() as conn:
        journal_before = conn.execute(sa.select(sa.func.count()).select_from(journal)).scalar()
    with engine.begin() as conn:
        ids = registry.retire_many_in(
            conn, kind="surrender", items=items, batch_key="b1", by="mee", period="p", role="r"
        )
    ops = [registry.operation(i) for i in ids]
    assert [(o.kind, o.from_owner, o.quantity, o.key) for o in ops] == [
        ("surrender", "ent:a", 70, "s1"),
        ("surrender", "ent:b", 50, "s2"),
        ("surrender", "ent:a", 20, "s3"),
    ]
    assert [[s.rsplit("-", 2)[1:] for s in o.serials] for o in ops] == [
        [["000000001", "000000060"], ["000000111", "000000120"]],
        [["000000061", "000000110"]],
        [["000000121", "000000140"]],
    ]
    assert _balance(registry, "ent:a") == (10, 0)
    assert registry.holdings("ent:a")[0].serials[0].endswith("-000000141-000000150")
    assert _balance(registry, "ent:b") == (0, 0)
    with engine.connect() as conn:
        journal_after = conn.execute(sa.select(sa.func.count()).select_from(journal)).scalar()
    assert journal_after == journal_before + 1  # one ledger batch for the whole set
    assert registry.verify() == []


def test_a_set_wise_retirement_short_of_units_changes_nothing(
    registry: Registry, engine: sa.Engine
) -> None:
    _issue(registry, "ent:a", 60, "i1")
    _issue(registry, "ent:b", 50, "i2")
    items = [
        Retirement("ent:a", "CEA-2024", 40, "s1"),
        Retirement("ent:b", "CEA-2024", 30, "s2"),
        Retirement("ent:a", "CEA-2024", 21, "s3"),  # 61 asked of a's 60
    ]
    with pytest.raises(errors.InsufficientUnitsError) as refused, engine.begin() as conn:
        registry.retire_many_in(conn, kind="cancel", items=items, batch_key="b", by="mee")
    assert "ent:a has 60 t of CEA-2024 free, 61 t asked" in refused.value.message
    assert (_balance(registry, "ent:a"), _balance(registry, "ent:b")) == ((60, 0), (50, 0))
    assert [o.kind for o in registry.operations()] == ["issue", "issue"]
    assert registry.verify() == []
