"""The ledger's use cases: open accounts, post batches, read balances and statements.

`Ledger.post()` is the only way value moves in carbonbook. A batch is planned in memory
against the locked accounts (model.plan_batch) and written with a fixed number of statements
(store.LedgerStore), inside one database transaction: all of it applies or none of it does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from carbonbook.db.bulk import insert_rows
from carbonbook.db.engine import is_postgres
from carbonbook.db.schema import (
    account_balances,
    accounts,
    assets,
    journal,
    pending_transfers,
    transfers,
)
from carbonbook.ledger import errors
from carbonbook.ledger.model import (
    AccountFlags,
    Batch,
    BatchResult,
    PendingState,
    TransferKind,
    check_shape,
    entry_hash,
    pending_ids,
    plan_batch,
    row_bytes,
    row_digest,
    touched_accounts,
)
from carbonbook.ledger.store import Head, LedgerStore, TransferRow
from carbonbook.metrics import BATCHES_INFO_KEY

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

# The core assets; registry units (CEA-2024, CCER, PCER-BJ-2025, ...) are added by the registry.
CORE_ASSETS: tuple[tuple[str, str, str], ...] = (
    ("CNY", "fen", "人民币 Chinese yuan, in fen"),
    ("POINT", "point", "绿色积分 green points"),
    ("CO2E_MG", "mg", "个人减排量 personal CO2e reduction, in milligrams"),
)


def now_us() -> int:
    """The current instant in integer microseconds since the epoch (UTC)."""
    return time.time_ns() // 1000


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    owner: str
    asset: str
    name: str
    flags: int
    balance: int
    held: int
    created_at: int

    @property
    def available(self) -> int:
        return self.balance - self.held

    @property
    def is_issuer(self) -> bool:
        return bool(self.flags & AccountFlags.ISSUER)

    @property
    def is_frozen(self) -> bool:
        return bool(self.flags & AccountFlags.FROZEN)


@dataclass(frozen=True, slots=True)
class Balance:
    account_id: int
    asset: str
    balance: int
    held: int
    as_of: int | None

    @property
    def available(self) -> int:
        return self.balance - self.held


@dataclass(frozen=True, slots=True)
class StatementLine:
    transfer_id: int
    batch_id: int
    created_at: int
    kind: TransferKind
    reason: str
    counterparty: int
    amount: int  # signed: positive credits this account
    balance_after: int
    held_after: int
    meta: str | None


@dataclass(frozen=True, slots=True)
class Statement:
    account: Account
    opening_balance: int
    lines: list[StatementLine]
    closing_balance: int


# Built once: the lookup is on every hot path (statement building cost more than the query).
_ACCOUNT_BY_NAME = sa.select(account_balances).where(
    account_balances.c.owner == sa.bindparam("o"),
    account_balances.c.asset == sa.bindparam("a"),
    account_balances.c.name == sa.bindparam("n"),
)
_ACCOUNT_BY_ID = sa.select(account_balances).where(account_balances.c.id == sa.bindparam("id"))


class Ledger:
    """The double-entry ledger over one database."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    # -- assets and accounts --------------------------------------------------------------------

    def ensure_assets(self, items: Iterable[tuple[str, str, str]] = CORE_ASSETS) -> None:
        """Register assets (code, unit, name) that are not registered yet."""
        with self.engine.begin() as conn:
            self.ensure_assets_in(conn, items)

    @staticmethod
    def ensure_assets_in(conn: sa.Connection, items: Iterable[tuple[str, str, str]]) -> None:
        known = set(conn.execute(sa.select(assets.c.code)).scalars())
        fresh = [
            {"code": code, "unit": unit, "name": name, "created_at": now_us()}
            for code, unit, name in items
            if code not in known
        ]
        if fresh:
            conn.execute(assets.insert(), fresh)

    def open_account(
        self, owner: str, asset: str, name: str = "main", flags: int = AccountFlags.NONE
    ) -> Account:
        """The account (owner, asset, name), opened now if it does not exist yet."""
        with self.engine.begin() as conn:
            return self.open_account_in(conn, owner, asset, name, flags)

    def open_account_in(
        self,
        conn: sa.Connection,
        owner: str,
        asset: str,
        name: str = "main",
        flags: int = AccountFlags.NONE,
    ) -> Account:
        found = self._find_account(conn, owner, asset, name)
        if found is not None:
            return found
        self.open_accounts_in(conn, [(owner, asset, name, int(flags))])
        opened = self._find_account(conn, owner, asset, name)
        if opened is None:  # pragma: no cover - just inserted in this transaction
            raise errors.AccountNotFoundError(f"account {owner}/{asset}/{name} vanished")
        return opened

    def open_accounts_in(
        self, conn: sa.Connection, specs: Sequence[tuple[str, str, str, int]]
    ) -> list[int]:
        """Open many accounts (owner, asset, name, flags) at once; returns their ids in order."""
        known = set(conn.execute(sa.select(assets.c.code)).scalars())
        for _, asset, _, _ in specs:
            if asset not in known:
                raise errors.UnknownAssetError(f"unknown asset {asset}", f"未知资产 {asset}")
        first = LedgerStore(conn).allocate_ids(len(specs))
        at = now_us()
        ids = [first + i for i in range(len(specs))]
        insert_rows(
            conn,
            "accounts",
            ("id", "owner", "asset", "name", "flags", "created_at"),
            [
                (account_id, owner, asset, name, int(flags), at)
                for account_id, (owner, asset, name, flags) in zip(ids, specs, strict=True)
            ],
        )
        insert_rows(conn, "balances", ("account_id", "balance", "held"), [(i, 0, 0) for i in ids])
        return ids

    @staticmethod
    def _find_account(conn: sa.Connection, owner: str, asset: str, name: str) -> Account | None:
        row = conn.execute(_ACCOUNT_BY_NAME, {"o": owner, "a": asset, "n": name}).first()
        return None if row is None else Account(*row)

    @classmethod
    def find_account_in(
        cls, conn: sa.Connection, owner: str, asset: str, name: str = "main"
    ) -> Account | None:
        """The account (owner, asset, name) inside the caller's transaction, or None."""
        return cls._find_account(conn, owner, asset, name)

    def find_account(self, owner: str, asset: str, name: str = "main") -> Account | None:
        with self.engine.connect() as conn:
            return self._find_account(conn, owner, asset, name)

    def account(self, account_id: int, conn: sa.Connection | None = None) -> Account:
        """The account with this id, or AccountNotFoundError."""
        if conn is None:
            with self.engine.connect() as own:
                return self.account(account_id, own)
        row = conn.execute(_ACCOUNT_BY_ID, {"id": account_id}).first()
        if row is None:
            raise errors.AccountNotFoundError(
                f"no account {account_id}", f"账户 {account_id} 不存在", account=account_id
            )
        return Account(*row)

    def accounts_of(self, owner: str) -> list[Account]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(account_balances)
                .where(account_balances.c.owner == owner)
                .order_by(account_balances.c.id)
            )
            return [Account(*r) for r in rows]

    def set_frozen(self, account_id: int, *, frozen: bool) -> Account:
        """Freeze or unfreeze an account (a frozen account can neither send nor receive)."""
        with self.engine.begin() as conn:
            LedgerStore(conn).lock_head()  # the ledger's lock, as posting takes: no batch between
            current = self.account(account_id, conn)
            flags = (
                (current.flags | AccountFlags.FROZEN)
                if frozen
                else (current.flags & ~AccountFlags.FROZEN)
            )
            conn.execute(
                accounts.update().where(accounts.c.id == account_id).values(flags=int(flags))
            )
            return self.account(account_id, conn)

    # -- posting --------------------------------------------------------------------------------

    def post(self, batch: Batch) -> BatchResult:
        """Apply a batch atomically, or refuse it and change nothing.

        Replaying a batch (same issuer and key, same content) returns the first result and
        changes nothing; the same key with other content is IdempotencyConflictError.
        """
        check_shape(batch)
        with self.engine.begin() as conn:
            return self.post_in(conn, batch, checked=True)

    def post_in(self, conn: sa.Connection, batch: Batch, *, checked: bool = False) -> BatchResult:
        """Apply a batch inside the caller's transaction (so a service can write its own rows
        in the same commit). The caller must let an exception roll the transaction back."""
        if not checked:
            check_shape(batch)
        _check_keys_unique(batch)
        store = LedgerStore(conn)
        digest = batch.digest()
        pend_ids = pending_ids(batch)
        # The head lock first: every writer holds it until commit, so what follows reads
        # accounts and reservations no one else can change, and no concurrent batch with the
        # same key can commit between the key's check and ours.
        head = store.lock_head()
        pendings = store.load_pending(pend_ids) if pend_ids else {}
        states = store.read_accounts(sorted(touched_accounts(batch, pendings)))
        found = store.find_batch(batch.issuer, batch.key)
        if found is not None:
            return _replayed(found, digest, batch)
        plan = plan_batch(batch, states, pendings)

        batch_id = head.next_id
        first_id = batch_id + 1
        count = len(plan.rows)
        at = now_us()
        issuer = batch.issuer
        rows: list[TransferRow] = []
        digests = bytearray()
        for offset, (debit, credit, amount, asset, kind, _i, pid, reason, key, meta) in enumerate(
            plan.rows
        ):
            row: TransferRow = (
                first_id + offset, batch_id, issuer, key, debit, credit, asset, amount, kind,
                pid, reason, meta, at,
            )  # fmt: skip
            rows.append(row)
            digests += row_digest(row_bytes(*row))
        self._insert_transfers(conn, store, batch, rows)
        store.update_accounts(plan.accounts.values())
        if plan.new_pending:
            store.insert_pending(
                [
                    (first_id + i, rows[i][4], rows[i][5], rows[i][6], rows[i][7], at)
                    for i in plan.new_pending
                ]
            )
        if plan.resolved_pending:
            store.resolve_pending(
                [(int(state), first_id + i, pid) for pid, state, i in plan.resolved_pending]
            )
        seq = head.seq + 1
        row_digests = bytes(digests)
        new_hash = entry_hash(
            head.hash, seq, batch_id, issuer, batch.key, digest, first_id, count, at, row_digests
        )
        store.append_journal(
            (
                seq,
                batch_id,
                issuer,
                batch.key,
                digest,
                first_id,
                count,
                row_digests,
                at,
                head.hash,
                new_hash,
            ),
            Head(seq, new_hash, 0),
            first_id + count,
        )
        # Counted when the transaction commits (carbonbook.metrics), never for a rollback
        conn.info[BATCHES_INFO_KEY] = conn.info.get(BATCHES_INFO_KEY, 0) + 1
        return BatchResult(batch_id, seq, first_id, count, at)

    @staticmethod
    def _insert_transfers(
        conn: sa.Connection, store: LedgerStore, batch: Batch, rows: list[TransferRow]
    ) -> None:
        keyed = [t.key for t in batch.transfers if t.key is not None]
        if not keyed:
            store.insert_transfers(rows)
            return
        # A duplicate transfer key fails the insert. On PostgreSQL a failed statement poisons the
        # transaction, so the insert runs under a savepoint and the offending keys are looked
        # up after rolling back to it.
        savepoint = conn.begin_nested() if is_postgres(conn) else None
        try:
            store.insert_transfers(rows)
        except sa.exc.IntegrityError:
            raise _duplicate_keys(conn, store, savepoint, batch.issuer, keyed) from None
        except Exception as exc:
            if _is_integrity_error(exc):
                raise _duplicate_keys(conn, store, savepoint, batch.issuer, keyed) from None
            raise
        if savepoint is not None:
            savepoint.commit()

    def existing_transfer_keys(
        self, issuer: str, keys: Sequence[str], conn: sa.Connection | None = None
    ) -> set[str]:
        """Which of these transfer keys earlier batches of `issuer` already used."""
        if conn is None:
            with self.engine.connect() as own:
                return LedgerStore(own).existing_transfer_keys(issuer, keys)
        return LedgerStore(conn).existing_transfer_keys(issuer, keys)

    # -- reading --------------------------------------------------------------------------------

    def balance(self, account_id: int, as_of: int | None = None) -> Balance:
        """An account's balance and holds now, or as of the instant `as_of` (microseconds)."""
        with self.engine.connect() as conn:
            account = self.account(account_id, conn)
            if as_of is None:
                return Balance(account.id, account.asset, account.balance, account.held, None)
            return Balance(
                account.id,
                account.asset,
                _balance_as_of(conn, account_id, as_of),
                _held_as_of(conn, account_id, as_of),
                as_of,
            )

    def statement(
        self,
        account_id: int,
        since: int | None = None,
        until: int | None = None,
        limit: int = 500,
    ) -> Statement:
        """An account's transfers in order with the running balance and holds after each."""
        with self.engine.connect() as conn:
            account = self.account(account_id, conn)
            opening = 0 if since is None else _balance_as_of(conn, account_id, since - 1)
            opening_held = 0 if since is None else _held_as_of(conn, account_id, since - 1)
            t = transfers
            conds = [
                sa.or_(t.c.debit_account_id == account_id, t.c.credit_account_id == account_id)
            ]
            if since is not None:
                conds.append(t.c.created_at >= since)
            if until is not None:
                conds.append(t.c.created_at <= until)
            query = (
                sa.select(
                    t.c.id,
                    t.c.batch_id,
                    t.c.created_at,
                    t.c.kind,
                    t.c.reason,
                    t.c.debit_account_id,
                    t.c.credit_account_id,
                    t.c.amount,
                    t.c.pending_id,
                    t.c.meta,
                )
                .where(*conds)
                .order_by(t.c.id)
                .limit(limit)
            )
            rows = conn.execute(query).all()
            pending_amounts = _pending_amounts(conn, [r.pending_id for r in rows if r.pending_id])
        balance, held = opening, opening_held
        lines: list[StatementLine] = []
        for r in rows:
            incoming = r.credit_account_id == account_id
            kind = TransferKind(r.kind)
            signed = r.amount if incoming else -r.amount
            if kind is TransferKind.POSTED:
                balance += signed
            elif kind is TransferKind.PENDING:
                if not incoming:
                    held += r.amount
                signed = 0 if incoming else -r.amount
            else:
                if not incoming:
                    held -= pending_amounts.get(r.pending_id, 0)
                if kind is TransferKind.POST_PENDING:
                    balance += signed
                else:
                    signed = 0
            lines.append(
                StatementLine(
                    r.id,
                    r.batch_id,
                    r.created_at,
                    kind,
                    r.reason,
                    r.debit_account_id if incoming else r.credit_account_id,
                    signed,
                    balance,
                    held,
                    r.meta,
                )
            )
        return Statement(account, opening, lines, balance)

    def asset_totals(self) -> dict[str, int]:
        """Per asset, the sum of all balances: zero when the books balance."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    account_balances.c.asset, sa.func.sum(account_balances.c.balance)
                ).group_by(account_balances.c.asset)
            )
            return {asset: int(total or 0) for asset, total in rows}

    def journal_length(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(journal)).scalar_one())


def _check_keys_unique(batch: Batch) -> None:
    seen: set[str] = set()
    for i, t in enumerate(batch.transfers):
        if t.key is None:
            continue
        if t.key in seen:
            raise errors.DuplicateTransferKeyError(
                f"transfer {i}: key {t.key!r} appears twice in the batch",
                f"第 {i} 笔转账：幂等键 {t.key!r} 在批次中重复",
                index=i,
                key=t.key,
            )
        seen.add(t.key)


def _replayed(found: tuple[Any, ...], digest: bytes, batch: Batch) -> BatchResult:
    batch_id, seq, first, count, at, stored_digest = found
    if bytes(stored_digest) != digest:
        raise errors.IdempotencyConflictError(
            f"idempotency key {batch.key!r} of {batch.issuer} was used for a different batch",
            f"{batch.issuer} 的幂等键 {batch.key!r} 已用于另一笔不同的批次",
            key=batch.key,
        )
    return BatchResult(batch_id, seq, first, count, at, replayed=True)


def _is_integrity_error(exc: BaseException) -> bool:
    # Driver errors raised on the raw cursor are not wrapped by SQLAlchemy.
    name = type(exc).__name__
    return name in {"IntegrityError", "UniqueViolation"}


def _duplicate_keys(
    conn: sa.Connection,
    store: LedgerStore,
    savepoint: sa.NestedTransaction | None,
    issuer: str,
    keys: Sequence[str],
) -> errors.DuplicateTransferKeyError:
    if savepoint is not None:
        savepoint.rollback()
    used = sorted(store.existing_transfer_keys(issuer, keys))
    shown = ", ".join(repr(k) for k in used[:5]) + (" ..." if len(used) > 5 else "")
    del conn
    return errors.DuplicateTransferKeyError(
        f"transfer keys already used by {issuer}: {shown}",
        f"{issuer} 的转账幂等键已被使用：{shown}",
        keys=used[:20],
    )


def _balance_as_of(conn: sa.Connection, account_id: int, as_of: int) -> int:
    t = transfers
    moved = t.c.kind.in_((int(TransferKind.POSTED), int(TransferKind.POST_PENDING)))
    credited = sa.select(sa.func.coalesce(sa.func.sum(t.c.amount), 0)).where(
        t.c.credit_account_id == account_id, t.c.created_at <= as_of, moved
    )
    debited = sa.select(sa.func.coalesce(sa.func.sum(t.c.amount), 0)).where(
        t.c.debit_account_id == account_id, t.c.created_at <= as_of, moved
    )
    return int(conn.execute(credited).scalar_one()) - int(conn.execute(debited).scalar_one())


def _held_as_of(conn: sa.Connection, account_id: int, as_of: int) -> int:
    p = pending_transfers
    resolution = transfers.alias("resolution")
    query = (
        sa.select(sa.func.coalesce(sa.func.sum(p.c.amount), 0))
        .select_from(p.outerjoin(resolution, resolution.c.id == p.c.resolved_by))
        .where(
            p.c.debit_account_id == account_id,
            p.c.created_at <= as_of,
            sa.or_(p.c.resolved_by.is_(None), resolution.c.created_at > as_of),
        )
    )
    return int(conn.execute(query).scalar_one())


def _pending_amounts(conn: sa.Connection, ids: list[int]) -> dict[int, int]:
    if not ids:
        return {}
    rows = conn.execute(
        sa.select(pending_transfers.c.id, pending_transfers.c.amount).where(
            pending_transfers.c.id.in_(ids)
        )
    )
    return {int(i): int(a) for i, a in rows}


__all__ = ["CORE_ASSETS", "Account", "Balance", "Ledger", "PendingState", "Statement", "now_us"]
