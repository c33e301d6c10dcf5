"""Accounts, balances and statements; transfers for the roles allowed to post them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from carbonbook.api.deps import Ctx, CurrentUser, require
from carbonbook.api.errors import ApiError
from carbonbook.identity.model import Permission, User
from carbonbook.ledger.service import Account, Ledger

router = APIRouter(tags=["ledger"])

# Ids and amounts are 64-bit signed integers in the database.
INT64 = 2**63 - 1
AccountId = Annotated[int, Path(ge=1, le=INT64, description="an account id")]


class AccountOut(BaseModel):
    id: int
    owner: str
    asset: str
    name: str
    balance: int = Field(description="integer units of the asset (fen, mg, points, tonnes)")
    held: int
    available: int
    issuer: bool
    frozen: bool

    @staticmethod
    def of(a: Account) -> AccountOut:
        return AccountOut(
            id=a.id,
            owner=a.owner,
            asset=a.asset,
            name=a.name,
            balance=a.balance,
            held=a.held,
            available=a.available,
            issuer=a.is_issuer,
            frozen=a.is_frozen,
        )


class BalanceOut(BaseModel):
    account_id: int
    asset: str
    balance: int
    held: int
    available: int
    as_of: datetime | None


class LineOut(BaseModel):
    transfer_id: int
    batch_id: int
    at: datetime
    kind: str
    reason: str
    counterparty_account_id: int
    amount: int
    balance_after: int
    held_after: int


class StatementOut(BaseModel):
    account: AccountOut
    opening_balance: int
    closing_balance: int
    lines: list[LineOut]


def _us(moment: datetime | None) -> int | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise ApiError(
            422, "NAIVE_TIME", "give the instant with its UTC offset", "时间必须带时区偏移"
        )
    return int(moment.timestamp() * 1_000_000)


def _dt(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC)


def _visible_account(ledger: Ledger, user: User, account_id: int) -> Account:
    account = ledger.account(account_id)
    if account.owner != user.owner and not user.can(Permission.READ_ALL_ACCOUNTS):
        # Same answer as a missing account: do not reveal which ids exist.
        raise ApiError(
            404, "ACCOUNT_NOT_FOUND", f"no account {account_id}", f"账户 {account_id} 不存在"
        )
    return account


@router.get("/accounts", response_model=list[AccountOut], summary="My accounts (or an owner's)")
def list_accounts(user: CurrentUser, ctx: Ctx, owner: str | None = None) -> list[AccountOut]:
    if owner is not None and owner != user.owner:
        require(user, Permission.READ_ALL_ACCOUNTS)
    return [AccountOut.of(a) for a in ctx.ledger.accounts_of(owner or user.owner)]


@router.get("/accounts/{account_id}", response_model=AccountOut)
def get_account(account_id: AccountId, user: CurrentUser, ctx: Ctx) -> AccountOut:
    return AccountOut.of(_visible_account(ctx.ledger, user, account_id))


@router.get("/accounts/{account_id}/balance", response_model=BalanceOut)
def get_balance(
    account_id: AccountId, user: CurrentUser, ctx: Ctx, as_of: datetime | None = None
) -> BalanceOut:
    _visible_account(ctx.ledger, user, account_id)
    b = ctx.ledger.balance(account_id, _us(as_of))
    return BalanceOut(
        account_id=b.account_id,
        asset=b.asset,
        balance=b.balance,
        held=b.held,
        available=b.available,
        as_of=as_of,
    )


@router.get("/accounts/{account_id}/statement", response_model=StatementOut)
def get_statement(
    account_id: AccountId,
    user: CurrentUser,
    ctx: Ctx,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> StatementOut:
    _visible_account(ctx.ledger, user, account_id)
    s = ctx.ledger.statement(account_id, _us(since), _us(until), limit)
    return StatementOut(
        account=AccountOut.of(s.account),
        opening_balance=s.opening_balance,
        closing_balance=s.closing_balance,
        lines=[
            LineOut(
                transfer_id=line.transfer_id,
                batch_id=line.batch_id,
                at=_dt(line.created_at),
                kind=line.kind.name.lower(),
                reason=line.reason,
                counterparty_account_id=line.counterparty,
                amount=line.amount,
                balance_after=line.balance_after,
                held_after=line.held_after,
            )
            for line in s.lines
        ],
    )
