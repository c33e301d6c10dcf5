"""The allowance and credit registry (登记簿): issuance, transfer, freeze, surrender and
voluntary cancellation (注销), each a ledger batch with serial-number blocks beside it.

Every unit of an asset (CEA-2024, CCER-2024, PCER-BJ-2025, ...) has a serial number. The
ledger says how many tonnes an account holds; `registry_blocks` says which serials. Both change
in the same database transaction, so `verify()` can always prove: per account, the blocks it
holds add up to its balance; per asset, every serial from 1 to the number ever issued is in
exactly one block; the blocks still held add up to issued minus retired (surrendered,
cancelled, or clawed back to the issuer).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa

from carbonbook import auditlog
from carbonbook.db.schema import (
    account_balances,
    registry_blocks,
    registry_certificates,
    registry_ops,
    registry_trusted,
)
from carbonbook.ledger import AccountFlags, Batch, BatchResult, Ledger, TransferRequest
from carbonbook.ledger.service import Account, now_us
from carbonbook.registry import errors
from carbonbook.registry.blocks import Block, Take, gaps_and_overlaps, take, take_in_turn
from carbonbook.registry.gate import REGISTRY_OWNER, HolderDirectory, HolderGate, NamedHolders
from carbonbook.registry.gate import check_text as _check_text
from carbonbook.registry.rules import RegistryRules, load_rules, serial

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

R = TypeVar("R")
MAX_TONNES = 10**12  # a trillion tonnes: far beyond any real issuance, well inside 64 bits

# Block states. A RETURNED block was clawed back to the issuer (an excess pre-allocation):
# its serials are never issued again, so it stays in the serial range, held by the issuer.
HELD, SURRENDERED, CANCELLED, RETURNED = 0, 1, 2, 3
_SINKS = {"surrender": "surrendered", "cancel": "cancelled"}
# Operation states
DONE, AWAITING_APPROVAL, REJECTED = 0, 1, 2
STATE_NAMES = {DONE: "done", AWAITING_APPROVAL: "awaiting_approval", REJECTED: "rejected"}

# Block moves run on every exchange fill: the statements are built once, with bind
# parameters (building a Core statement and its cache key per call cost more than running it).
_HELD_BLOCKS = (
    sa.select(
        registry_blocks.c.id,
        registry_blocks.c.issuance,
        registry_blocks.c.serial_start,
        registry_blocks.c.serial_end,
    )
    .where(registry_blocks.c.holder == sa.bindparam("source"), registry_blocks.c.state == HELD)
    .order_by(registry_blocks.c.serial_start)
)
_MOVE_WHOLE = (
    registry_blocks.update()
    .where(registry_blocks.c.id.in_(sa.bindparam("ids", expanding=True)))
    .values(
        holder=sa.bindparam("target"),
        state=sa.bindparam("new_state"),
        retired_by=sa.bindparam("by"),
    )
)
_SPLIT_REST = (
    registry_blocks.update()
    .where(registry_blocks.c.id == sa.bindparam("bid"))
    .values(serial_start=sa.bindparam("rest_start"))
)
_BLOCK_INSERT = registry_blocks.insert()


@dataclass(frozen=True, slots=True)
class Operation:
    id: int
    kind: str  # issue | transfer | surrender | cancel | clawback | freeze | unfreeze
    actor: str
    key: str
    asset: str | None
    quantity: int
    from_owner: str | None
    to_owner: str | None
    period: str | None
    role: str | None
    state: int
    requested_by: str
    decided_by: str | None
    created_at: int
    decided_at: int | None
    meta: dict[str, Any] = field(default_factory=dict)
    replayed: bool = False

    @property
    def state_name(self) -> str:
        return STATE_NAMES[self.state]

    @property
    def serials(self) -> list[str]:
        return list(self.meta.get("serials", []))

    def to_document(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "key": self.key,
            "asset": self.asset,
            "quantity": self.quantity,
            "from": self.from_owner,
            "to": self.to_owner,
            "period": self.period,
            "role": self.role,
            "state": self.state_name,
            "requested_by": self.requested_by,
            "decided_by": self.decided_by,
            "serials": self.serials,
            "reason": self.meta.get("reason"),
            "certificate": self.meta.get("certificate"),
            "replayed": self.replayed,
        }


@dataclass(frozen=True, slots=True)
class Retirement:
    """One line of a set-wise retirement (`Registry.retire_many_in`): `quantity` t of `asset`
    out of `owner`'s holding account, as the registry operation keyed `key` (per owner)."""

    owner: str
    asset: str
    quantity: int
    key: str


@dataclass(frozen=True, slots=True)
class Holding:
    owner: str
    asset: str
    balance: int
    held: int  # reserved by transfers awaiting approval, or by open sell orders
    frozen: bool
    serials: tuple[str, ...]

    @property
    def available(self) -> int:
        return self.balance - self.held


@dataclass(frozen=True, slots=True)
class Certificate:
    id: str
    holder: str
    beneficiary: str
    reason: str
    asset: str
    quantity: int
    serials: tuple[str, ...]
    created_at: int

    def to_document(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "holder": self.holder,
            "beneficiary": self.beneficiary,
            "reason": self.reason,
            "asset": self.asset,
            "quantity_t": self.quantity,
            "serials": list(self.serials),
            "cancelled_at_us": self.created_at,
        }


class Registry:
    """The registry over one database and one ledger."""

    def __init__(
        self,
        engine: sa.Engine,
        ledger: Ledger | None = None,
        rules: RegistryRules | None = None,
        *,
        holders: HolderDirectory | None = None,
    ) -> None:
        """`holders` says who exists: the platform passes `RegisteredHolders` (a registered
        user acts for the holder); without it every well-formed name is a holder."""
        self.engine = engine
        self.ledger = ledger or Ledger(engine)
        self.rules = rules or load_rules()
        self.gate = HolderGate(self.ledger, self.rules, holders or NamedHolders())

    # -- issuance ---------------------------------------------------------------------------------

    def issue(
        self,
        *,
        unit_type: str,
        vintage: int,
        to_owner: str,
        quantity: int,
        key: str,
        by: str,
        note: str = "",
    ) -> Operation:
        """Issue `quantity` new tonnes of `unit_type`-`vintage` to `to_owner` as one block.

        Only the regulator issues; the caller checks the role. A retry with the same key
        returns the first issuance.
        """
        asset = self.rules.asset(unit_type, vintage)
        _check_quantity(quantity)
        self.gate.check_holder_name(to_owner, "to")
        _check_text(key, "key")
        _check_text(note, "note")
        request = {"asset": asset, "quantity": quantity, "to_owner": to_owner}

        def work(conn: sa.Connection) -> Operation:
            op_id = self.issue_in(
                conn, asset=asset, to_owner=to_owner, quantity=quantity, key=key, by=by, note=note
            )
            return self.load_op_in(conn, op_id)

        return self.run_keyed(REGISTRY_OWNER, key, "issue", request, work, same_operation)

    def issue_in(
        self,
        conn: sa.Connection,
        *,
        asset: str,
        to_owner: str,
        quantity: int,
        key: str,
        by: str,
        note: str = "",
        also: Sequence[TransferRequest] = (),
    ) -> int:
        """Inside the caller's transaction: issue one new block; returns the operation id.

        `also`: transfers that belong to the same movement and must land in the issuance's own
        ledger batch (the bridge retires the grams behind the tonnes it issues)."""
        self.rules.split_asset(asset)  # a registry unit, or refused
        _check_quantity(quantity)
        self.gate.check_holder_name(to_owner, "to")  # admitted in `_issue_op`
        _check_text(note, "note")
        op_id = self._insert_op(
            conn,
            "issue",
            REGISTRY_OWNER,
            key,
            by,
            asset=asset,
            quantity=quantity,
            to_owner=to_owner,
            meta={"note": note} if note else {},
        )
        self._issue_op(
            conn, op_id, asset=asset, to_owner=to_owner, quantity=quantity, by=by, also=also
        )
        return op_id

    def request_issue(
        self,
        *,
        unit_type: str,
        vintage: int,
        to_owner: str,
        quantity: int,
        key: str,
        by: str,
        note: str = "",
    ) -> Operation:
        """One regulator asks for an issuance; it waits, issuing nothing, until another
        regulator approves it (`approve_issue`). A retry returns the same request."""
        asset = self.rules.asset(unit_type, vintage)
        _check_quantity(quantity)
        self.gate.check_holder_name(to_owner, "to")
        _check_text(key, "key")
        _check_text(note, "note")
        request = {"asset": asset, "quantity": quantity, "to_owner": to_owner}

        def work(conn: sa.Connection) -> Operation:
            self.gate.admit(conn, to_owner, asset)
            op_id = self._insert_op(
                conn,
                "issue",
                REGISTRY_OWNER,
                key,
                by,
                asset=asset,
                quantity=quantity,
                to_owner=to_owner,
                state=AWAITING_APPROVAL,
                meta={"note": note} if note else {},
            )
            auditlog.append(
                conn, by, "registry.issue.request", f"{to_owner}/{asset}", {"op": op_id}
            )
            return self.load_op_in(conn, op_id)

        return self.run_keyed(REGISTRY_OWNER, key, "issue", request, work, same_operation)

    def approve_issue(self, op_id: int, *, by: str) -> Operation:
        """A second regulator approves a requested issuance: the units are issued now. The
        regulator who asked may not approve their own request."""
        with self.engine.begin() as conn:
            op = self.load_op_in(conn, op_id, lock=True)
            if op.kind != "issue" or op.state != AWAITING_APPROVAL:
                raise errors.NotPendingError(
                    f"#{op_id} is not an issuance awaiting approval",
                    f"#{op_id} 不是待审批的签发",
                )
            if op.requested_by == by:
                raise errors.SecondApproverError(
                    "a second regulator must approve this issuance, not the one who asked",
                    "签发须由另一名主管人员审批，申请人不能自行审批",
                )
            self._issue_op(
                conn,
                op_id,
                asset=str(op.asset),
                to_owner=str(op.to_owner),
                quantity=op.quantity,
                by=by,
                decided_by=by,
            )
            return self.load_op_in(conn, op_id)

    def _issue_op(
        self,
        conn: sa.Connection,
        op_id: int,
        *,
        asset: str,
        to_owner: str,
        quantity: int,
        by: str,
        decided_by: str | None = None,
        also: Sequence[TransferRequest] = (),
    ) -> None:
        """Issue the operation's new block through the holder gate (with `also` in its batch)."""
        unit, vintage = self.rules.split_asset(asset)
        self.gate.admit(conn, to_owner, asset)  # again: the holder may be gone since asked
        note = self.load_op_in(conn, op_id).meta.get("note", "")
        self.ledger.ensure_assets_in(conn, [(asset, "t", f"{unit.name} {vintage}")])
        issuer = self.ledger.open_account_in(
            conn, REGISTRY_OWNER, asset, "issued", AccountFlags.ISSUER
        )
        holder = self.ledger.open_account_in(conn, to_owner, asset)
        batch = self._post(
            conn,
            f"issue:{op_id}",
            [
                TransferRequest.move(
                    issuer.id, holder.id, asset, quantity, "issue", meta={"op": op_id}
                ),
                *also,
            ],
        )
        # After the ledger's head lock: issuances of one asset cannot interleave here.
        first = 1 + int(
            conn.execute(
                sa.select(sa.func.coalesce(sa.func.max(registry_blocks.c.serial_end), 0)).where(
                    registry_blocks.c.asset == asset
                )
            ).scalar_one()
        )
        last = first + quantity - 1
        conn.execute(
            registry_blocks.insert().values(
                asset=asset,
                issuance=op_id,
                serial_start=first,
                serial_end=last,
                holder=holder.id,
                state=HELD,
                retired_by=None,
            )
        )
        text = serial(unit.serial_prefix, vintage, op_id, first, last)
        self._finish(
            conn,
            op_id,
            batch,
            {"serials": [text], **({"note": note} if note else {})},
            decided_by=decided_by,
        )
        auditlog.append(
            conn,
            by,
            "registry.issue",
            f"{to_owner}/{asset}",
            {"op": op_id, "quantity": quantity, "serials": text},
        )

    # -- transfer ---------------------------------------------------------------------------------

    def transfer(
        self,
        *,
        from_owner: str,
        to_owner: str,
        asset: str,
        quantity: int,
        key: str,
        by: str,
    ) -> Operation:
        """Move tonnes (with their serials) from one holding account to another.

        To a trusted counterparty and up to the threshold it is done at once. Otherwise the
        tonnes are reserved (a two-phase ledger transfer) and the transfer waits for a second
        person of the sender, or the regulator, to approve it.
        """
        self.rules.split_asset(asset)
        _check_quantity(quantity)
        self.gate.check_holder_name(to_owner, "to")
        _check_text(key, "key")
        if to_owner == from_owner:
            raise errors.SameAccountError(
                "a transfer needs two different holders", "转出方与转入方不能相同"
            )
        request = {"asset": asset, "quantity": quantity, "to_owner": to_owner}

        def work(conn: sa.Connection) -> Operation:
            self.gate.admit(conn, to_owner, asset)
            sender = self._holding_account(conn, from_owner, asset, quantity)
            receiver = self.ledger.open_account_in(conn, to_owner, asset)
            trusted = self._is_trusted(conn, from_owner, to_owner)
            immediate = trusted and quantity <= self.rules.second_approval_above_t
            op_id = self._insert_op(
                conn,
                "transfer",
                from_owner,
                key,
                by,
                asset=asset,
                quantity=quantity,
                from_owner=from_owner,
                to_owner=to_owner,
                state=DONE if immediate else AWAITING_APPROVAL,
            )
            if immediate:
                batch = self._post(
                    conn,
                    f"transfer:{op_id}",
                    [
                        TransferRequest.move(
                            sender.id, receiver.id, asset, quantity, "transfer", meta={"op": op_id}
                        )
                    ],
                )
                moved = self._move_blocks(conn, asset, sender.id, receiver.id, quantity)
                self._finish(conn, op_id, batch, {"serials": moved})
            else:
                batch = self._post(
                    conn,
                    f"transfer-hold:{op_id}",
                    [
                        TransferRequest.reserve(
                            sender.id,
                            receiver.id,
                            asset,
                            quantity,
                            "transfer-hold",
                            meta={"op": op_id},
                        )
                    ],
                )
                why = "untrusted" if not trusted else "above_threshold"
                conn.execute(
                    registry_ops.update()
                    .where(registry_ops.c.id == op_id)
                    .values(
                        pending_transfer=batch.first_transfer_id,
                        meta=_json({"awaiting": why}),
                    )
                )
            auditlog.append(
                conn,
                by,
                "registry.transfer",
                f"{from_owner}/{asset}",
                {"op": op_id, "to": to_owner, "quantity": quantity, "immediate": immediate},
            )
            return self.load_op_in(conn, op_id)

        return self.run_keyed(from_owner, key, "transfer", request, work, same_operation)

    def approve(
        self, op_id: int, *, approver_owner: str, by: str, regulator: bool = False
    ) -> Operation:
        """A second person approves a waiting transfer: the reservation is posted and the
        serials move. The person who asked may not approve their own request."""
        with self.engine.begin() as conn:
            op = self._waiting(conn, op_id, approver_owner, regulator)
            if op.requested_by == by:
                raise errors.SecondApproverError(
                    "a second person must approve this transfer, not the one who asked",
                    "此转让须由另一人审批，申请人不能自行审批",
                )
            asset, sender_owner, receiver_owner = (
                str(op.asset),
                str(op.from_owner),
                str(op.to_owner),
            )
            pending = int(
                conn.execute(
                    sa.select(registry_ops.c.pending_transfer).where(registry_ops.c.id == op_id)
                ).scalar_one()
            )
            batch = self._post(
                conn,
                f"transfer:{op_id}",
                [TransferRequest.post_pending(pending, 0, "transfer")],
            )
            sender = self.ledger.open_account_in(conn, sender_owner, asset)
            receiver = self.ledger.open_account_in(conn, receiver_owner, asset)
            moved = self._move_blocks(conn, asset, sender.id, receiver.id, op.quantity)
            self._finish(conn, op_id, batch, {**op.meta, "serials": moved}, decided_by=by)
            auditlog.append(
                conn, by, "registry.approve", f"{op.from_owner}/{op.asset}", {"op": op_id}
            )
            return self.load_op_in(conn, op_id)

    def reject(
        self, op_id: int, *, approver_owner: str, by: str, reason: str, regulator: bool = False
    ) -> Operation:
        """Turn down (or withdraw) a waiting transfer: the reservation is released."""
        reason = reason.strip()
        if not reason or len(reason) > 500:
            raise errors.RegistryError(
                "give a reason of 1 to 500 characters", "请填写 1 至 500 字的理由"
            )
        with self.engine.begin() as conn:
            op = self._waiting(conn, op_id, approver_owner, regulator)
            pending = int(
                conn.execute(
                    sa.select(registry_ops.c.pending_transfer).where(registry_ops.c.id == op_id)
                ).scalar_one()
            )
            self._post(conn, f"transfer-void:{op_id}", [TransferRequest.void_pending(pending)])
            conn.execute(
                registry_ops.update()
                .where(registry_ops.c.id == op_id)
                .values(
                    state=REJECTED,
                    decided_by=by,
                    decided_at=now_us(),
                    meta=_json({**op.meta, "reason": reason}),
                )
            )
            auditlog.append(
                conn,
                by,
                "registry.reject",
                f"{op.from_owner}/{op.asset}",
                {"op": op_id, "reason": reason},
            )
            return self.load_op_in(conn, op_id)

    def trust(self, owner: str, counterparty: str, *, by: str) -> None:
        """Add `counterparty` to `owner`'s trusted list (audited)."""
        self.gate.check_holder_name(counterparty, "counterparty")
        if counterparty == owner:
            raise errors.SameAccountError(
                "an account cannot trust itself", "不能将自己加入信任名单"
            )
        with self.engine.begin() as conn:
            if self._is_trusted(conn, owner, counterparty):
                return
            conn.execute(
                registry_trusted.insert().values(
                    owner=owner, counterparty=counterparty, added_by=by, added_at=now_us()
                )
            )
            auditlog.append(conn, by, "registry.trust", owner, {"counterparty": counterparty})

    def distrust(self, owner: str, counterparty: str, *, by: str) -> None:
        with self.engine.begin() as conn:
            gone = conn.execute(
                registry_trusted.delete().where(
                    registry_trusted.c.owner == owner,
                    registry_trusted.c.counterparty == counterparty,
                )
            ).rowcount
            if gone:
                auditlog.append(
                    conn, by, "registry.distrust", owner, {"counterparty": counterparty}
                )

    def trusted(self, owner: str) -> list[str]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    sa.select(registry_trusted.c.counterparty)
                    .where(registry_trusted.c.owner == owner)
                    .order_by(registry_trusted.c.counterparty)
                ).scalars()
            )

    # -- freeze -----------------------------------------------------------------------------------

    def freeze(self, owner: str, *, frozen: bool, by: str, reason: str) -> list[str]:
        """Freeze (or unfreeze) every unit account of `owner`; returns the assets touched."""
        reason = reason.strip()
        if not reason or len(reason) > 500:
            raise errors.RegistryError(
                "give a reason of 1 to 500 characters", "请填写 1 至 500 字的理由"
            )
        touched = []
        for account in self.ledger.accounts_of(owner):
            try:
                self.rules.split_asset(account.asset)
            except errors.UnknownUnitError:
                continue  # cash, points, grams: not the registry's to freeze
            if account.is_frozen != frozen:
                self.ledger.set_frozen(account.id, frozen=frozen)
            touched.append(account.asset)
        with self.engine.begin() as conn:
            auditlog.append(
                conn,
                by,
                "registry.freeze" if frozen else "registry.unfreeze",
                owner,
                {"assets": touched, "reason": reason},
            )
        return touched

    # -- retirement: surrender (清缴) and voluntary cancellation (注销) --------------------------

    def retire_in(
        self,
        conn: sa.Connection,
        *,
        kind: str,
        owner: str,
        asset: str,
        quantity: int,
        key: str,
        by: str,
        period: str | None = None,
        role: str | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> int:
        """Inside the caller's transaction: move tonnes and their serials from `owner` to the
        registry's `surrendered` or `cancelled` account, for good. Returns the operation id."""
        state = SURRENDERED if kind == "surrender" else CANCELLED
        _check_text(key, "key")
        sender = self._holding_account(conn, owner, asset, quantity)
        sink = self.ledger.open_account_in(conn, REGISTRY_OWNER, asset, _SINKS[kind])
        op_id = self._insert_op(
            conn,
            kind,
            owner,
            key,
            by,
            asset=asset,
            quantity=quantity,
            from_owner=owner,
            period=period,
            role=role,
        )
        batch = self._post(
            conn,
            f"{kind}:{op_id}",
            [TransferRequest.move(sender.id, sink.id, asset, quantity, kind, meta={"op": op_id})],
        )
        moved = self._move_blocks(
            conn, asset, sender.id, sink.id, quantity, state=state, retired_by=op_id
        )
        self._finish(conn, op_id, batch, {**(meta or {}), "serials": moved})
        return op_id

    def retire_many_in(
        self,
        conn: sa.Connection,
        *,
        kind: str,
        items: Sequence[Retirement],
        batch_key: str,
        by: str,
        period: str | None = None,
        role: str | None = None,
    ) -> list[int]:
        """Inside the caller's transaction: `retire_in` for many holdings at once, set-wise.

        One read of the holding accounts, one insert of the operations, one ledger batch under
        `batch_key` (its idempotency key), one read of the blocks and a few statements moving
        them. All or nothing: a holding short of free tonnes, or frozen, refuses the whole set.
        Returns the operation ids, in the order of `items`.
        """
        if not items:
            return []
        state = SURRENDERED if kind == "surrender" else CANCELLED
        for item in items:
            _check_quantity(item.quantity)
        senders = self._holding_accounts(conn, items)
        sinks = {
            asset: self.ledger.open_account_in(conn, REGISTRY_OWNER, asset, _SINKS[kind])
            for asset in sorted({item.asset for item in items})
        }
        at = now_us()
        inserted = conn.execute(
            registry_ops.insert().returning(registry_ops.c.id, sort_by_parameter_order=True),
            [
                {
                    "kind": kind,
                    "actor": item.owner,
                    "key": item.key,
                    "asset": item.asset,
                    "quantity": item.quantity,
                    "from_owner": item.owner,
                    "to_owner": None,
                    "period": period,
                    "role": role,
                    "state": DONE,
                    "requested_by": by,
                    "meta": _json({}),
                    "created_at": at,
                }
                for item in items
            ],
        )
        op_ids = [int(op_id) for op_id in inserted.scalars()]
        moves = [
            (item.asset, senders[item.owner, item.asset].id, sinks[item.asset].id, item.quantity)
            for item in items
        ]
        batch = self._post(
            conn,
            batch_key,
            [
                TransferRequest.move(source, sink, asset, quantity, kind, meta={"op": op_id})
                for (asset, source, sink, quantity), op_id in zip(moves, op_ids, strict=True)
            ],
        )
        moved = self._move_blocks_many(conn, moves, state=state, retired_by=op_ids)
        conn.execute(
            registry_ops.update()
            .where(registry_ops.c.id == sa.bindparam("op_id"))
            .values(batch_id=batch.batch_id, state=DONE, meta=sa.bindparam("op_meta")),
            [
                {"op_id": op_id, "op_meta": _json({"serials": serials})}
                for op_id, serials in zip(op_ids, moved, strict=True)
            ],
        )
        return op_ids

    def claw_back_in(
        self,
        conn: sa.Connection,
        *,
        owner: str,
        asset: str,
        quantity: int,
        key: str,
        by: str,
        note: str = "",
    ) -> int:
        """Inside the caller's transaction: take `quantity` t back from `owner`'s holding
        account to the issuer (an excess pre-allocation). The serials go back as RETURNED
        blocks held by the issuer and are never issued again, so the issuer's balance still
        says how many units exist. Returns the operation id."""
        _check_quantity(quantity)
        holder = self._holding_account(conn, owner, asset, quantity)
        issuer = self.ledger.open_account_in(
            conn, REGISTRY_OWNER, asset, "issued", AccountFlags.ISSUER
        )
        op_id = self._insert_op(
            conn,
            "clawback",
            REGISTRY_OWNER,
            key,
            by,
            asset=asset,
            quantity=quantity,
            from_owner=owner,
            meta={"note": note} if note else {},
        )
        batch = self._post(
            conn,
            f"clawback:{op_id}",
            [
                TransferRequest.move(
                    holder.id, issuer.id, asset, quantity, "clawback", meta={"op": op_id}
                )
            ],
        )
        moved = self._move_blocks(
            conn, asset, holder.id, issuer.id, quantity, state=RETURNED, retired_by=op_id
        )
        self._finish(conn, op_id, batch, {"serials": moved, **({"note": note} if note else {})})
        auditlog.append(
            conn,
            by,
            "registry.clawback",
            f"{owner}/{asset}",
            {"op": op_id, "quantity": quantity, "serials": moved},
        )
        return op_id

    def cancel(
        self,
        *,
        owner: str,
        asset: str,
        quantity: int,
        beneficiary: str,
        reason: str,
        key: str,
        by: str,
    ) -> Certificate:
        """Voluntarily cancel (注销) tonnes for a beneficiary; returns the public certificate."""
        self.rules.split_asset(asset)
        _check_quantity(quantity)
        beneficiary, reason = beneficiary.strip(), reason.strip()
        for text, name in ((beneficiary, "beneficiary"), (reason, "reason"), (key, "key")):
            _check_text(text, name)
        if not beneficiary or len(beneficiary) > 200:
            raise errors.RegistryError(
                "name a beneficiary (1 to 200 characters)", "请填写受益方（1 至 200 字）"
            )
        if not reason or len(reason) > 500:
            raise errors.RegistryError(
                "give a reason of 1 to 500 characters", "请填写 1 至 500 字的注销原因"
            )
        request = {"asset": asset, "quantity": quantity, "to_owner": None}

        def work(conn: sa.Connection) -> Certificate:
            cert_id = secrets.token_urlsafe(12)
            op_id = self.retire_in(
                conn,
                kind="cancel",
                owner=owner,
                asset=asset,
                quantity=quantity,
                key=key,
                by=by,
                meta={"beneficiary": beneficiary, "reason": reason, "certificate": cert_id},
            )
            op = self.load_op_in(conn, op_id)
            conn.execute(
                registry_certificates.insert().values(
                    id=cert_id,
                    op_id=op_id,
                    holder=owner,
                    beneficiary=beneficiary,
                    reason=reason,
                    asset=asset,
                    quantity=quantity,
                    serials=_json(op.serials),
                    created_at=op.created_at,
                )
            )
            auditlog.append(
                conn,
                by,
                "registry.cancel",
                f"{owner}/{asset}",
                {"op": op_id, "quantity": quantity, "certificate": cert_id},
            )
            return self._certificate_of(conn, op_id)

        return self.run_keyed(
            owner, key, "cancel", request, work, lambda c, op: self._certificate_of(c, op.id)
        )

    # -- delivery versus payment (货银对付) --------------------------------------------------------

    def settle_in(
        self,
        conn: sa.Connection,
        batch: Batch,
        deliveries: Sequence[tuple[str, int, int, int]],
    ) -> tuple[BatchResult, list[list[str]]]:
        """Inside the caller's transaction: post `batch` (units and cash legs together) and
        move the serials of each delivery (asset, from account id, to account id, tonnes).

        The exchange settles a trade this way: one ledger batch, so cash and units move
        together or not at all, and the blocks move in the same commit. A replayed batch
        moves nothing again.
        """
        result = self.gate.post_settlement(conn, batch)
        if result.replayed:
            return result, []
        moved = [
            self._move_blocks(conn, asset, source, target, quantity)
            for asset, source, target, quantity in deliveries
        ]
        return result, moved

    def certificate(self, cert_id: str) -> Certificate:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(registry_certificates).where(registry_certificates.c.id == cert_id)
            ).first()
        if row is None:
            raise errors.UnknownOperationError("no such certificate", "没有该注销证明")
        return _certificate(row)

    # -- reading ----------------------------------------------------------------------------------

    def holdings(self, owner: str) -> list[Holding]:
        """`owner`'s registry units: balance, reserved, frozen, and the serials held."""
        out = []
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    account_balances.c.id,
                    account_balances.c.asset,
                    account_balances.c.balance,
                    account_balances.c.held,
                    account_balances.c.flags,
                )
                .where(account_balances.c.owner == owner)
                .order_by(account_balances.c.asset)
            ).all()
            for row in rows:
                try:
                    unit, vintage = self.rules.split_asset(row.asset)
                except errors.UnknownUnitError:
                    continue
                blocks = conn.execute(
                    sa.select(
                        registry_blocks.c.issuance,
                        registry_blocks.c.serial_start,
                        registry_blocks.c.serial_end,
                    )
                    .where(registry_blocks.c.holder == row.id, registry_blocks.c.state == HELD)
                    .order_by(registry_blocks.c.serial_start)
                ).all()
                out.append(
                    Holding(
                        owner,
                        row.asset,
                        int(row.balance),
                        int(row.held),
                        bool(row.flags & AccountFlags.FROZEN),
                        tuple(
                            serial(
                                unit.serial_prefix,
                                vintage,
                                b.issuance,
                                b.serial_start,
                                b.serial_end,
                            )
                            for b in blocks
                        ),
                    )
                )
        return out

    def operations(
        self, owner: str | None = None, *, limit: int = 100, awaiting: bool = False
    ) -> list[Operation]:
        """Operations touching `owner` (all when None), newest first."""
        query = sa.select(registry_ops).order_by(registry_ops.c.id.desc()).limit(limit)
        if owner is not None:
            query = query.where(
                sa.or_(registry_ops.c.from_owner == owner, registry_ops.c.to_owner == owner)
            )
        if awaiting:
            query = query.where(registry_ops.c.state == AWAITING_APPROVAL)
        with self.engine.connect() as conn:
            return [_operation(r) for r in conn.execute(query)]

    def operation(self, op_id: int) -> Operation:
        with self.engine.connect() as conn:
            return self.load_op_in(conn, op_id)

    def verify(self) -> list[str]:
        """Every disagreement between blocks and ledger, named; an empty list means none."""
        problems: list[str] = []
        with self.engine.connect() as conn:
            held = dict(
                conn.execute(
                    sa.select(
                        registry_blocks.c.holder,
                        sa.func.sum(
                            registry_blocks.c.serial_end - registry_blocks.c.serial_start + 1
                        ),
                    )
                    .where(registry_blocks.c.state == HELD)
                    .group_by(registry_blocks.c.holder)
                ).all()
            )
            retired = dict(
                conn.execute(
                    sa.select(
                        registry_blocks.c.holder,
                        sa.func.sum(
                            registry_blocks.c.serial_end - registry_blocks.c.serial_start + 1
                        ),
                    )
                    .where(registry_blocks.c.state != HELD)
                    .group_by(registry_blocks.c.holder)
                ).all()
            )
            unit_accounts = conn.execute(
                sa.select(
                    account_balances.c.id,
                    account_balances.c.owner,
                    account_balances.c.asset,
                    account_balances.c.name,
                    account_balances.c.balance,
                    account_balances.c.flags,
                )
            ).all()
            for acc in unit_accounts:
                try:
                    self.rules.split_asset(acc.asset)
                except errors.UnknownUnitError:
                    continue
                if acc.flags & AccountFlags.ISSUER:
                    continue
                in_blocks = int(held.get(acc.id, 0)) + int(retired.get(acc.id, 0))
                if in_blocks != int(acc.balance):
                    problems.append(
                        f"account {acc.id} ({acc.owner}/{acc.asset}/{acc.name}) holds "
                        f"{acc.balance} t but its blocks hold {in_blocks}"
                    )
            # Clawed-back serials are out of circulation but were issued once: they count
            # towards the serial range, not towards the issuer's (net) balance.
            returned = dict(
                conn.execute(
                    sa.select(
                        registry_blocks.c.asset,
                        sa.func.sum(
                            registry_blocks.c.serial_end - registry_blocks.c.serial_start + 1
                        ),
                    )
                    .where(registry_blocks.c.state == RETURNED)
                    .group_by(registry_blocks.c.asset)
                ).all()
            )
            for asset, net in conn.execute(
                sa.select(account_balances.c.asset, -account_balances.c.balance).where(
                    account_balances.c.owner == REGISTRY_OWNER, account_balances.c.name == "issued"
                )
            ):
                issued = int(net) + int(returned.get(asset, 0))
                ranges = conn.execute(
                    sa.select(registry_blocks.c.serial_start, registry_blocks.c.serial_end).where(
                        registry_blocks.c.asset == asset
                    )
                ).all()
                problems.extend(f"{asset}: {p}" for p in gaps_and_overlaps(ranges, int(issued)))
        return problems

    # -- internals --------------------------------------------------------------------------------

    def run_keyed(
        self,
        actor: str,
        key: str,
        kind: str,
        request: Mapping[str, Any],
        work: Callable[[sa.Connection], R],
        replay: Callable[[sa.Connection, Operation], R],
    ) -> R:
        """Run one keyed operation in a transaction; a retry gets the first one's answer."""
        if not key or len(key) > 100:
            raise errors.RegistryError(
                "an idempotency key of 1 to 100 characters is required",
                "须提供 1 至 100 个字符的幂等键",
            )
        try:
            with self.engine.begin() as conn:
                found = self._replay(conn, actor, key, kind, request)
                return work(conn) if found is None else replay(conn, found)
        except sa.exc.IntegrityError:
            # A concurrent request with the same key committed first: answer with it.
            with self.engine.connect() as conn:
                found = self._replay(conn, actor, key, kind, request)
                if found is None:
                    raise
                return replay(conn, found)

    def _replay(
        self, conn: sa.Connection, actor: str, key: str, kind: str, request: Mapping[str, Any]
    ) -> Operation | None:
        row = conn.execute(
            sa.select(registry_ops).where(registry_ops.c.actor == actor, registry_ops.c.key == key)
        ).first()
        if row is None:
            return None
        op = _operation(row)
        same = (
            op.kind == kind
            and op.asset == request["asset"]
            and op.quantity == request["quantity"]
            and op.to_owner == request["to_owner"]
        )
        if not same:
            raise errors.KeyReusedError(
                f"key {key!r} was already used for {op.kind} #{op.id}",
                f"幂等键 {key!r} 已用于 {op.kind} #{op.id}",
            )
        return Operation(**{**_op_fields(op), "replayed": True})

    def _insert_op(
        self,
        conn: sa.Connection,
        kind: str,
        actor: str,
        key: str,
        by: str,
        *,
        asset: str | None,
        quantity: int,
        from_owner: str | None = None,
        to_owner: str | None = None,
        period: str | None = None,
        role: str | None = None,
        state: int = DONE,
        meta: Mapping[str, Any] | None = None,
    ) -> int:
        result = conn.execute(
            registry_ops.insert()
            .values(
                kind=kind,
                actor=actor,
                key=key,
                asset=asset,
                quantity=quantity,
                from_owner=from_owner,
                to_owner=to_owner,
                period=period,
                role=role,
                state=state,
                requested_by=by,
                meta=_json(meta or {}),
                created_at=now_us(),
            )
            .returning(registry_ops.c.id)
        )
        return int(result.scalar_one())

    def _post(self, conn: sa.Connection, key: str, transfers: list[TransferRequest]) -> BatchResult:
        return self.gate.post(conn, key, transfers)

    def _finish(
        self,
        conn: sa.Connection,
        op_id: int,
        batch: BatchResult,
        meta: Mapping[str, Any],
        decided_by: str | None = None,
    ) -> None:
        values: dict[str, Any] = {
            "batch_id": batch.batch_id,
            "state": DONE,
            "meta": _json(meta),
        }
        if decided_by is not None:
            values |= {"decided_by": decided_by, "decided_at": now_us()}
        conn.execute(registry_ops.update().where(registry_ops.c.id == op_id).values(**values))

    def _holding_account(
        self, conn: sa.Connection, owner: str, asset: str, quantity: int
    ) -> Account:
        found = self.ledger.find_account_in(conn, owner, asset)
        if found is None or found.balance - found.held < quantity:
            have = 0 if found is None else found.balance - found.held
            raise errors.InsufficientUnitsError(
                f"{owner} has {have} t of {asset} free, {quantity} t asked",
                f"{owner} 可用的 {asset} 为 {have} 吨，申请 {quantity} 吨",
                available=have,
            )
        if found.is_frozen:
            raise errors.AccountFrozenError(
                f"{owner}'s {asset} account is frozen", f"{owner} 的 {asset} 账户已被冻结"
            )
        return found

    def _holding_accounts(
        self, conn: sa.Connection, items: Sequence[Retirement]
    ) -> dict[tuple[str, str], Account]:
        """`_holding_account` for many (owner, asset) at once, in one read."""
        owners = sorted({item.owner for item in items})
        assets_ = sorted({item.asset for item in items})
        found = {
            (row.owner, row.asset): Account(*row)
            for row in conn.execute(
                sa.select(account_balances).where(
                    account_balances.c.owner.in_(owners),
                    account_balances.c.asset.in_(assets_),
                    account_balances.c.name == "main",
                )
            )
        }
        asked: dict[tuple[str, str], int] = {}
        for item in items:
            asked[item.owner, item.asset] = asked.get((item.owner, item.asset), 0) + item.quantity
        for (owner, asset), quantity in asked.items():
            account = found.get((owner, asset))
            have = 0 if account is None else account.balance - account.held
            if account is None or have < quantity:
                raise errors.InsufficientUnitsError(
                    f"{owner} has {have} t of {asset} free, {quantity} t asked",
                    f"{owner} 可用的 {asset} 为 {have} 吨，申请 {quantity} 吨",
                    available=have,
                )
            if account.is_frozen:
                raise errors.AccountFrozenError(
                    f"{owner}'s {asset} account is frozen", f"{owner} 的 {asset} 账户已被冻结"
                )
        return found

    def _move_blocks_many(
        self,
        conn: sa.Connection,
        moves: Sequence[tuple[str, int, int, int]],
        *,
        state: int,
        retired_by: Sequence[int],
    ) -> list[list[str]]:
        """`_move_blocks` for many moves (asset, source account, target account, tonnes) in one
        pass: one read of the sources' blocks, then one executemany per kind of change. Moves
        from one source are taken in turn, as if made one after the other."""
        sources = sorted({source for _, source, _, _ in moves})
        held: dict[int, list[Block]] = {source: [] for source in sources}
        for r in conn.execute(
            sa.select(
                registry_blocks.c.id,
                registry_blocks.c.holder,
                registry_blocks.c.issuance,
                registry_blocks.c.serial_start,
                registry_blocks.c.serial_end,
            )
            .where(registry_blocks.c.holder.in_(sources), registry_blocks.c.state == HELD)
            .order_by(registry_blocks.c.holder, registry_blocks.c.serial_start)
        ):
            held[int(r.holder)].append(Block(r.id, r.issuance, r.serial_start, r.serial_end))
        indices: dict[int, list[int]] = {source: [] for source in sources}
        for i, (_, source, _, _) in enumerate(moves):
            indices[source].append(i)
        plans: dict[int, Take] = {}
        for source, at in indices.items():
            plans.update(
                zip(at, take_in_turn(held[source], [moves[i][3] for i in at]), strict=True)
            )
        whole: list[dict[str, int]] = []
        starts: dict[int, int] = {}  # block id -> its first serial after every split
        fresh: list[dict[str, Any]] = []
        serials: list[list[str]] = []
        for i, (asset, _, target, _) in enumerate(moves):
            plan = plans[i]
            whole.extend({"block": b.id, "to": target, "op": retired_by[i]} for b in plan.whole)
            if plan.split is not None:
                block, n = plan.split
                starts[block.id] = block.start + n
                fresh.append(_split_part(asset, block, n, target, state, retired_by[i]))
            unit, vintage = self.rules.split_asset(asset)
            serials.append(
                [serial(unit.serial_prefix, vintage, n, s, e) for n, s, e in plan.moved_ranges()]
            )
        # Shorten split blocks before inserting the split-off parts: (asset, serial_start) is
        # unique, and a part starts where its block used to.
        if starts:
            conn.execute(
                registry_blocks.update()
                .where(registry_blocks.c.id == sa.bindparam("block"))
                .values(serial_start=sa.bindparam("start")),
                [{"block": block, "start": start} for block, start in starts.items()],
            )
        if whole:
            conn.execute(
                registry_blocks.update()
                .where(registry_blocks.c.id == sa.bindparam("block"))
                .values(holder=sa.bindparam("to"), state=state, retired_by=sa.bindparam("op")),
                whole,
            )
        if fresh:
            conn.execute(registry_blocks.insert(), fresh)
        return serials

    def _move_blocks(
        self,
        conn: sa.Connection,
        asset: str,
        source: int,
        target: int,
        quantity: int,
        *,
        state: int = HELD,
        retired_by: int | None = None,
    ) -> list[str]:
        rows = conn.execute(_HELD_BLOCKS, {"source": source}).all()
        plan = take([Block(r.id, r.issuance, r.serial_start, r.serial_end) for r in rows], quantity)
        if plan.whole:
            conn.execute(
                _MOVE_WHOLE,
                {
                    "ids": [b.id for b in plan.whole],
                    "target": target,
                    "new_state": state,
                    "by": retired_by,
                },
            )
        if plan.split is not None:
            block, n = plan.split
            conn.execute(_SPLIT_REST, {"bid": block.id, "rest_start": block.start + n})
            conn.execute(_BLOCK_INSERT, _split_part(asset, block, n, target, state, retired_by))
        unit, vintage = self.rules.split_asset(asset)
        return [serial(unit.serial_prefix, vintage, i, s, e) for i, s, e in plan.moved_ranges()]

    def _is_trusted(self, conn: sa.Connection, owner: str, counterparty: str) -> bool:
        return (
            conn.execute(
                sa.select(registry_trusted.c.owner).where(
                    registry_trusted.c.owner == owner,
                    registry_trusted.c.counterparty == counterparty,
                )
            ).first()
            is not None
        )

    def _waiting(
        self, conn: sa.Connection, op_id: int, approver_owner: str, regulator: bool
    ) -> Operation:
        op = self.load_op_in(conn, op_id, lock=True)
        if op.kind != "transfer" or (not regulator and op.from_owner != approver_owner):
            raise errors.UnknownOperationError(
                f"no transfer #{op_id} of yours", f"没有您的转让 #{op_id}"
            )
        if op.state != AWAITING_APPROVAL:
            raise errors.NotPendingError(
                f"transfer #{op_id} is {op.state_name}, not awaiting approval",
                f"转让 #{op_id} 状态为 {op.state_name}，无需审批",
            )
        return op

    def load_op_in(self, conn: sa.Connection, op_id: int, *, lock: bool = False) -> Operation:
        query = sa.select(registry_ops).where(registry_ops.c.id == op_id)
        row = conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise errors.UnknownOperationError(f"no operation #{op_id}", f"没有操作 #{op_id}")
        return _operation(row)

    def _certificate_of(self, conn: sa.Connection, op_id: int) -> Certificate:
        row = conn.execute(
            sa.select(registry_certificates).where(registry_certificates.c.op_id == op_id)
        ).one()
        return _certificate(row)


def same_operation(_: sa.Connection, op: Operation) -> Operation:
    return op


def _check_quantity(quantity: int) -> None:
    if (
        isinstance(quantity, bool)
        or not isinstance(quantity, int)
        or not 0 < quantity <= MAX_TONNES
    ):
        raise errors.BadQuantityError(
            f"quantity must be a whole number of tonnes from 1 to {MAX_TONNES}, not {quantity!r}",
            f"数量须为 1 至 {MAX_TONNES} 的整数吨，而不是 {quantity!r}",
        )


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _op_fields(op: Operation) -> dict[str, Any]:
    return {name: getattr(op, name) for name in Operation.__slots__}


def _operation(row: Any) -> Operation:
    return Operation(
        id=int(row.id),
        kind=row.kind,
        actor=row.actor,
        key=row.key,
        asset=row.asset,
        quantity=int(row.quantity),
        from_owner=row.from_owner,
        to_owner=row.to_owner,
        period=row.period,
        role=row.role,
        state=int(row.state),
        requested_by=row.requested_by,
        decided_by=row.decided_by,
        created_at=int(row.created_at),
        decided_at=None if row.decided_at is None else int(row.decided_at),
        meta=json.loads(row.meta) if row.meta else {},
    )


def _certificate(row: Any) -> Certificate:
    return Certificate(
        row.id,
        row.holder,
        row.beneficiary,
        row.reason,
        row.asset,
        int(row.quantity),
        tuple(json.loads(row.serials)),
        int(row.created_at),
    )


def _split_part(
    asset: str, block: Block, n: int, holder: int, state: int, retired_by: int | None
) -> dict[str, Any]:
    """The row of the block's first `n` serials, split off to `holder` (the rest stays)."""
    return {
        "asset": asset,
        "issuance": block.issuance,
        "serial_start": block.start,
        "serial_end": block.start + n - 1,
        "holder": holder,
        "state": state,
        "retired_by": retired_by,
    }
