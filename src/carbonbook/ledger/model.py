"""Pure ledger rules: what a batch does to balances and holds, or why it is refused.

No database here. `plan_batch()` takes the touched accounts' current state and returns every
change the batch makes, or raises the first refusal; the service applies a plan atomically.

Sign convention (as TigerBeetle's debit/credit pair, collapsed to one number): a transfer of
`amount` lowers the debit account's balance and raises the credit account's. Issuer accounts
(e.g. the registry issuing allowances, the personal scheme crediting grams) are the only ones
allowed below zero, so per asset all balances sum to zero.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag
from typing import TYPE_CHECKING

from carbonbook.ledger import errors

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


# Balances are 64-bit signed integers in both databases.
MAX_BALANCE = 2**63 - 1


class AccountFlags(IntFlag):
    """Account flags, stored as an integer bit set."""

    NONE = 0
    ISSUER = 1  # may go below zero: the source of an asset
    FROZEN = 2  # no debit, no credit, no reservation


class TransferKind(IntEnum):
    """What a transfer row does."""

    POSTED = 0  # moves the amount now
    PENDING = 1  # reserves the amount on the debit account (a hold), moves nothing yet
    POST_PENDING = 2  # moves up to the pending amount and releases the whole hold
    VOID_PENDING = 3  # releases the whole hold, moves nothing


# Plain ints for the hot loop: IntFlag arithmetic costs ~1 us per operation.
_ISSUER = int(AccountFlags.ISSUER)
_FROZEN = int(AccountFlags.FROZEN)


class PendingState(IntEnum):
    OPEN = 0
    POSTED = 1
    VOIDED = 2


@dataclass(frozen=True, slots=True)
class TransferRequest:
    """One transfer asked of the ledger.

    For POST_PENDING and VOID_PENDING, `pending_id` names the reservation and the accounts and
    asset are taken from it (`debit`, `credit`, `asset` may be left 0/""); a POST_PENDING with
    `amount` 0 posts the full pending amount.
    """

    debit: int
    credit: int
    asset: str
    amount: int
    reason: str
    key: str | None = None
    kind: TransferKind = TransferKind.POSTED
    pending_id: int | None = None
    meta: str | None = None  # JSON text, kept verbatim

    @staticmethod
    def move(
        debit: int,
        credit: int,
        asset: str,
        amount: int,
        reason: str,
        key: str | None = None,
        meta: Mapping[str, object] | None = None,
    ) -> TransferRequest:
        """A transfer that moves `amount` now."""
        return TransferRequest(debit, credit, asset, amount, reason, key, meta=_meta(meta))

    @staticmethod
    def reserve(
        debit: int,
        credit: int,
        asset: str,
        amount: int,
        reason: str,
        key: str | None = None,
        meta: Mapping[str, object] | None = None,
    ) -> TransferRequest:
        """A pending transfer: hold `amount` on the debit account until posted or voided."""
        return TransferRequest(
            debit, credit, asset, amount, reason, key, TransferKind.PENDING, meta=_meta(meta)
        )

    @staticmethod
    def post_pending(
        pending_id: int, amount: int = 0, reason: str = "post", key: str | None = None
    ) -> TransferRequest:
        """Post a reservation in full (amount 0) or in part; the rest of the hold is released."""
        return TransferRequest(
            0, 0, "", amount, reason, key, TransferKind.POST_PENDING, pending_id=pending_id
        )

    @staticmethod
    def void_pending(
        pending_id: int, reason: str = "void", key: str | None = None
    ) -> TransferRequest:
        """Release a reservation; nothing moves."""
        return TransferRequest(
            0, 0, "", 0, reason, key, TransferKind.VOID_PENDING, pending_id=pending_id
        )


def _meta(meta: Mapping[str, object] | None) -> str | None:
    if meta is None:
        return None
    return json.dumps(meta, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Batch:
    """Transfers that apply all together or not at all, under one idempotency key."""

    issuer: str
    key: str
    transfers: Sequence[TransferRequest]

    def digest(self) -> bytes:
        """A digest of the request's content: a replay must match it to get the first result."""
        h = hashlib.sha256()
        h.update(f"{self.issuer}\x1f{self.key}\x1e".encode())
        for t in self.transfers:
            h.update(
                f"{t.debit}\x1f{t.credit}\x1f{t.asset}\x1f{t.amount}\x1f{t.reason}\x1f"
                f"{t.key}\x1f{int(t.kind)}\x1f{t.pending_id}\x1f{t.meta}\x1e".encode()
            )
        return h.digest()


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What a posted batch became. A replay of the same request returns the same result."""

    batch_id: int
    seq: int
    first_transfer_id: int
    transfer_count: int
    created_at: int
    replayed: bool = False

    @property
    def transfer_ids(self) -> range:
        return range(self.first_transfer_id, self.first_transfer_id + self.transfer_count)


@dataclass(slots=True)
class AccountState:
    """The part of an account that planning reads and changes."""

    id: int
    asset: str
    flags: int
    balance: int
    held: int


@dataclass(frozen=True, slots=True)
class PendingRecord:
    id: int
    debit: int
    credit: int
    asset: str
    amount: int
    state: PendingState


@dataclass(slots=True)
class Plan:
    """Every change a batch makes: rows to write and the touched accounts' new state."""

    rows: list[tuple[int, int, int, str, int, int, int | None, str, str | None, str | None]] = (
        field(default_factory=list)
    )  # (debit, credit, amount, asset, kind, index, pending_id, reason, key, meta)
    accounts: dict[int, AccountState] = field(default_factory=dict)
    new_pending: list[int] = field(default_factory=list)  # row indexes that open a hold
    resolved_pending: list[tuple[int, PendingState, int]] = field(
        default_factory=list
    )  # (pending id, new state, row index that resolves it)


def pending_ids(batch: Batch) -> set[int]:
    """The reservations a batch posts or voids (to be loaded before planning)."""
    return {t.pending_id for t in batch.transfers if t.pending_id is not None}


def touched_accounts(batch: Batch, pendings: Mapping[int, PendingRecord]) -> set[int]:
    """Ids of every account a batch reads or changes."""
    ids: set[int] = set()
    for t in batch.transfers:
        if t.pending_id is not None:
            record = pendings.get(t.pending_id)
            if record is not None:
                ids.add(record.debit)
                ids.add(record.credit)
        else:
            ids.add(t.debit)
            ids.add(t.credit)
    return ids


def check_shape(batch: Batch) -> None:
    """Refuse what no account state can make valid: empty batches, bad amounts, one account.

    IMPORTANT: amounts must be Python ints (not bool, not float, not Decimal): a float amount
    would be the first step towards stustapay's rounding epsilon.
    """
    if not batch.transfers:
        raise errors.EmptyBatchError("a batch needs at least one transfer", "批次中没有任何转账")
    if not batch.key or not batch.issuer:
        raise errors.BadAmountError(
            "a batch needs an issuer and an idempotency key", "批次必须有发起方和幂等键"
        )
    for i, t in enumerate(batch.transfers):
        amount = t.amount
        if type(amount) is not int:
            raise errors.BadAmountError(
                f"transfer {i}: amount {amount!r} is not an integer",
                f"第 {i} 笔转账：金额 {amount!r} 不是整数",
                index=i,
            )
        if t.kind is TransferKind.VOID_PENDING or t.kind is TransferKind.POST_PENDING:
            if t.pending_id is None:
                raise errors.UnknownPendingError(
                    f"transfer {i}: names no pending transfer",
                    f"第 {i} 笔转账：未指定待结算转账",
                    index=i,
                )
            if amount < 0:
                raise errors.BadAmountError(
                    f"transfer {i}: amount {amount} is negative",
                    f"第 {i} 笔转账：金额 {amount} 为负数",
                    index=i,
                )
            continue
        if amount <= 0 or amount > MAX_BALANCE:
            raise errors.BadAmountError(
                f"transfer {i}: amount {amount} is not a positive 64-bit integer",
                f"第 {i} 笔转账：金额 {amount} 必须为正的 64 位整数",
                index=i,
            )
        if t.debit == t.credit:
            raise errors.SameAccountError(
                f"transfer {i}: debit and credit are the same account {t.debit}",
                f"第 {i} 笔转账：借方与贷方是同一账户 {t.debit}",
                index=i,
            )


def plan_batch(  # noqa: C901 - the ledger rule in one loop: the hot path stays flat
    batch: Batch,
    accounts: Mapping[int, AccountState],
    pendings: Mapping[int, PendingRecord],
) -> Plan:
    """Apply a batch's transfers in order to copies of the accounts, or refuse it.

    Transfers apply one after another, so a later transfer may spend what an earlier one in
    the same batch credited; every intermediate state must satisfy the invariants.

    Args:
        batch: the request (its shape already checked by `check_shape`).
        accounts: the state of every account the batch touches, by id; IMPORTANT: the plan
            changes these objects (pass fresh copies, as the store does).
        pendings: every reservation the batch posts or voids, by id.

    Returns:
        the plan: rows to insert and the touched accounts' new balances and holds.

    Raises:
        LedgerError: the first rule the batch breaks; nothing is applied.
    """
    plan = Plan()
    state = plan.accounts
    rows = plan.rows
    resolved: set[int] = set()
    posted, pending_kind = TransferKind.POSTED, TransferKind.PENDING
    for i, t in enumerate(batch.transfers):
        kind = t.kind
        pending_id = t.pending_id
        if pending_id is not None and kind in (
            TransferKind.POST_PENDING,
            TransferKind.VOID_PENDING,
        ):
            if pending_id in resolved:
                raise _already_resolved(i, pending_id)
            resolved.add(pending_id)
            _resolve_pending(plan, t, i, pendings, accounts)
            continue
        debit_state = state.get(t.debit)
        if debit_state is None:
            debit_state = _load(state, accounts, t.debit, i)
        credit_state = state.get(t.credit)
        if credit_state is None:
            credit_state = _load(state, accounts, t.credit, i)
        asset = t.asset
        if debit_state.asset != asset or credit_state.asset != asset:
            raise errors.AssetMismatchError(
                f"transfer {i}: asset {asset} does not match accounts {t.debit} "
                f"({debit_state.asset}) and {t.credit} ({credit_state.asset})",
                f"第 {i} 笔转账：资产 {asset} 与账户 {t.debit}（{debit_state.asset}）"
                f"和 {t.credit}（{credit_state.asset}）不一致",
                index=i,
            )
        if (debit_state.flags | credit_state.flags) & _FROZEN:
            _check_not_frozen(debit_state, credit_state, i)
        amount = t.amount
        if kind is posted:
            debit_state.balance -= amount
            credit_state.balance += amount
            if credit_state.balance > MAX_BALANCE or debit_state.balance < -MAX_BALANCE:
                raise errors.BadAmountError(
                    f"transfer {i}: a balance would leave the 64-bit range",
                    f"第 {i} 笔转账：余额将超出 64 位整数范围",
                    index=i,
                )
        elif kind is pending_kind:
            debit_state.held += amount
            plan.new_pending.append(i)
        if not debit_state.flags & _ISSUER and (debit_state.balance - debit_state.held < 0):
            _check_available(debit_state, amount, i)
        rows.append((t.debit, t.credit, amount, asset, int(kind), i, None, t.reason, t.key, t.meta))
    return plan


def _already_resolved(i: int, pending_id: int) -> errors.PendingResolvedError:
    return errors.PendingResolvedError(
        f"transfer {i}: pending transfer {pending_id} was already posted or voided",
        f"第 {i} 笔转账：待结算转账 {pending_id} 已结算或已撤销",
        index=i,
    )


def _resolve_pending(
    plan: Plan,
    t: TransferRequest,
    i: int,
    pendings: Mapping[int, PendingRecord],
    accounts: Mapping[int, AccountState],
) -> None:
    """Post (in full or part) or void a reservation: the whole hold is released either way."""
    pending_id = t.pending_id
    if pending_id is None:  # pragma: no cover - the caller checked
        raise errors.UnknownPendingError("no pending id", "未指定待结算转账")
    record = pendings.get(pending_id)
    if record is None:
        raise errors.UnknownPendingError(
            f"transfer {i}: no pending transfer {pending_id}",
            f"第 {i} 笔转账：待结算转账 {pending_id} 不存在",
            index=i,
        )
    if record.state is not PendingState.OPEN:
        raise _already_resolved(i, pending_id)
    state = plan.accounts
    debit_state = _load(state, accounts, record.debit, i)
    credit_state = _load(state, accounts, record.credit, i)
    _check_not_frozen(debit_state, credit_state, i)
    debit_state.held -= record.amount
    if t.kind is TransferKind.POST_PENDING:
        amount = t.amount or record.amount
        if amount > record.amount:
            raise errors.BadAmountError(
                f"transfer {i}: posts {amount}, more than pending {record.amount}",
                f"第 {i} 笔转账：结算金额 {amount} 超过冻结金额 {record.amount}",
                index=i,
            )
        debit_state.balance -= amount
        credit_state.balance += amount
        _check_available(debit_state, amount, i)
        new_state = PendingState.POSTED
    else:
        amount = record.amount
        new_state = PendingState.VOIDED
    plan.resolved_pending.append((pending_id, new_state, i))
    plan.rows.append(
        (
            record.debit,
            record.credit,
            amount,
            record.asset,
            int(t.kind),
            i,
            pending_id,
            t.reason,
            t.key,
            t.meta,
        )
    )


def _load(
    state: dict[int, AccountState], accounts: Mapping[int, AccountState], account_id: int, i: int
) -> AccountState:
    """The account's state for this plan. The plan changes the objects it is given: callers
    pass freshly loaded states (the store builds new ones for every batch)."""
    current = state.get(account_id)
    if current is not None:
        return current
    stored = accounts.get(account_id)
    if stored is None:
        raise errors.UnknownAccountError(
            f"transfer {i}: no account {account_id}",
            f"第 {i} 笔转账：账户 {account_id} 不存在",
            index=i,
            account=account_id,
        )
    state[account_id] = stored
    return stored


def _check_not_frozen(debit: AccountState, credit: AccountState, i: int) -> None:
    for account in (debit, credit):
        if account.flags & _FROZEN:
            raise errors.AccountFrozenError(
                f"transfer {i}: account {account.id} is frozen",
                f"第 {i} 笔转账：账户 {account.id} 已冻结",
                index=i,
                account=account.id,
            )


def _check_available(account: AccountState, amount: int, i: int) -> None:
    """IMPORTANT: available = balance - held never goes below zero for a non-issuer."""
    if account.flags & _ISSUER:
        return
    available = account.balance - account.held
    if available < 0:
        raise errors.InsufficientFundsError(
            f"transfer {i}: account {account.id} lacks {-available} {account.asset} "
            f"to cover {amount}",
            f"第 {i} 笔转账：账户 {account.id} 可用余额不足，缺少 {-available} {account.asset}",
            index=i,
            account=account.id,
            shortfall=-available,
        )


# ---------------------------------------------------------------------------------------------
# The journal's hashes
# ---------------------------------------------------------------------------------------------

ROW_DIGEST_SIZE = 8


def row_bytes(
    transfer_id: int,
    batch_id: int,
    issuer: str,
    key: str | None,
    debit: int,
    credit: int,
    asset: str,
    amount: int,
    kind: int,
    pending_id: int | None,
    reason: str,
    meta: str | None,
    created_at: int,
) -> bytes:
    """The canonical bytes of one transfer row, as the journal digests it."""
    return (
        f"{transfer_id}\x1f{batch_id}\x1f{issuer}\x1f{key}\x1f{debit}\x1f{credit}\x1f{asset}"
        f"\x1f{amount}\x1f{kind}\x1f{pending_id}\x1f{reason}\x1f{meta}\x1f{created_at}"
    ).encode()


def row_digest(data: bytes) -> bytes:
    """An 8-byte digest of one transfer row: enough to name an edited row, not to forge one."""
    return hashlib.blake2b(data, digest_size=ROW_DIGEST_SIZE).digest()


def entry_hash(
    prev_hash: bytes,
    seq: int,
    batch_id: int,
    issuer: str,
    key: str,
    request_digest: bytes,
    first_transfer_id: int,
    transfer_count: int,
    created_at: int,
    row_digests: bytes,
) -> bytes:
    """The hash of a journal entry: it covers the previous hash, so no entry can change alone."""
    h = hashlib.sha256(prev_hash)
    h.update(
        f"{seq}\x1f{batch_id}\x1f{issuer}\x1f{key}\x1f{first_transfer_id}\x1f"
        f"{transfer_count}\x1f{created_at}\x1e".encode()
    )
    h.update(request_digest)
    h.update(row_digests)
    return h.digest()
