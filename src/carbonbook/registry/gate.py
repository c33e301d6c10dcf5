"""The holder gate (登记簿的持有人闸门): the one place where registry units move on the ledger.

Issuance, transfer (and its approval), surrender (清缴), voluntary cancellation (注销) and
claw-back all land units through `HolderGate`: it admits the receiving holder, refuses control
characters in holder names, keys and notes, and is the only registry code that asks the ledger
to post (an architecture test holds that). What it applies:

- a holder exists: the directory knows it (on the platform: a registered user acts for it);
- a holder's kind may hold the unit type (`[[holder_kind]]` in data/registry/registry.toml:
  no CEA for a natural person `person:...`, no units at all for the regulator);
- names and keys carry no control characters (a NUL in a holder's name was issued to).
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING, Protocol

import sqlalchemy as sa

from carbonbook.db.schema import users
from carbonbook.ledger import Batch, BatchResult, Ledger, TransferRequest
from carbonbook.ledger import errors as ledger_errors
from carbonbook.registry import errors

if TYPE_CHECKING:
    from carbonbook.registry.rules import RegistryRules

REGISTRY_OWNER = "registry"  # the registry's own accounts: issued, surrendered, cancelled
PERSON_ROLE = "person"  # users.role of a natural person (identity.model.Role.PERSON)


class HolderDirectory(Protocol):
    """Who exists: `kind_of` is the holder's kind, or None when no such holder exists."""

    def kind_of(self, conn: sa.Connection, owner: str) -> str | None: ...


class NamedHolders:
    """Every well-formed name is a holder, of the kind its prefix says. For the registry used
    as a library (tests, imports of a foreign registry's state) where no identity exists."""

    def kind_of(self, conn: sa.Connection, owner: str) -> str | None:
        del conn
        return prefix_of(owner)


class RegisteredHolders:
    """The platform's holders: an owner exists when a user (not disabled) acts for it. A holder
    whose users are all natural persons is a `person` whatever its name says."""

    def kind_of(self, conn: sa.Connection, owner: str) -> str | None:
        roles = set(
            conn.execute(
                sa.select(users.c.role).where(users.c.owner == owner, users.c.disabled.is_(False))
            ).scalars()
        )
        if not roles:
            return None
        return PERSON_ROLE if roles == {PERSON_ROLE} else prefix_of(owner)


def prefix_of(owner: str) -> str:
    """The kind of `entity:demo-steel` is `entity`; a name without a colon is its own kind."""
    return owner.split(":", 1)[0]


def check_text(value: str, field: str) -> None:
    """Refuse control characters (NUL, newline, escape, ...) in names, keys and notes: they
    forge log lines and break exports, and no real name carries one."""
    if any(unicodedata.category(c) in {"Cc", "Cf", "Cs", "Co"} for c in value):
        raise errors.BadTextError(f"{field} contains control characters", f"{field} 含有控制字符")


class HolderGate:
    """Admits holders and posts the registry's unit moves. One per `Registry`."""

    def __init__(self, ledger: Ledger, rules: RegistryRules, directory: HolderDirectory) -> None:
        self.ledger = ledger
        self.rules = rules
        self.directory = directory

    def check_holder_name(self, owner: str, field: str) -> None:
        """A name that could be a holder (before any database work)."""
        if not owner or len(owner) > 120 or owner == REGISTRY_OWNER or owner != owner.strip():
            raise errors.RegistryError(
                f"{field}: not a holder {owner!r}", f"{field}：无效的持有人 {owner!r}"
            )
        check_text(owner, field)

    def admit(self, conn: sa.Connection, owner: str, asset: str, field: str = "to") -> None:
        """`owner` exists and may hold `asset`; else refuse (nothing has moved yet)."""
        self.check_holder_name(owner, field)
        unit, _ = self.rules.split_asset(asset)
        kind = self.directory.kind_of(conn, owner)
        if kind is None:
            raise errors.UnknownHolderError(
                f"{field}: no holder {owner!r} is registered", f"{field}：持有人 {owner!r} 不存在"
            )
        if not self.rules.holder_kinds:
            return  # rules without a holder table (hand-made test rules): existence only
        found = self.rules.holder_kinds.get(kind)
        if found is None or not found.may_hold_unit(unit):
            raise errors.HolderMayNotHoldError(
                f"{owner} ({kind}) may not hold {unit.code}",
                f"{owner}（{kind}）不得持有 {unit.code}",
            )

    def post(self, conn: sa.Connection, key: str, transfers: list[TransferRequest]) -> BatchResult:
        """Post one batch of unit moves for a fresh operation (its key is new)."""
        try:
            result = self.ledger.post_in(conn, Batch(REGISTRY_OWNER, key, transfers))
        except ledger_errors.PendingResolvedError as exc:
            raise errors.NotPendingError(
                "this transfer was decided meanwhile", "该转让已被处理"
            ) from exc
        except ledger_errors.InsufficientFundsError as exc:
            raise errors.InsufficientUnitsError(
                "not enough free tonnes in the holding account",
                "持有账户中可用的数量不足",
            ) from exc
        except ledger_errors.AccountFrozenError as exc:
            raise errors.AccountFrozenError(
                "the holding account is frozen", "持有账户已被冻结"
            ) from exc
        if result.replayed:  # the op was fresh, so its batch cannot exist: decided meanwhile
            raise errors.NotPendingError("this operation was done meanwhile", "该操作已被处理")
        return result

    def post_settlement(self, conn: sa.Connection, batch: Batch) -> BatchResult:
        """A trade's delivery-versus-payment batch (units and cash together), admitted by the
        exchange's trade gate; a replay returns the first result."""
        return self.ledger.post_in(conn, batch)
