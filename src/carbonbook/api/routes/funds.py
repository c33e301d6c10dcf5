"""Trading accounts and client funds over HTTP: apply for a trading account (开户) and have it
reviewed (KYC), bind a bank account, deposit (入金) and withdraw (出金) through the settlement
bank, and the exchange's daily reconciliation (对账)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field

from carbonbook.api.deps import Ctx, CurrentUser, require
from carbonbook.api.fields import BusinessDay, Text
from carbonbook.api.routes.exchange import Yuan
from carbonbook.exchange.funds import FundsRefusedError, FundTransfer
from carbonbook.identity.model import Permission
from carbonbook.numbers import yuan_text_to_fen

router = APIRouter(tags=["funds"])
AccountId = Annotated[int, Path(ge=1, le=2**63 - 1)]


class ApplicationIn(BaseModel):
    kind: Literal["legal_person", "individual"] = "legal_person"
    entity_name: Text = Field(min_length=1, max_length=200, examples=["示例钢铁有限公司"])
    identifier: Text = Field(
        min_length=18,
        max_length=18,
        description="unified social credit code (legal person) or resident ID number",
        examples=["91350100M000100Y43"],
    )


class ReviewIn(BaseModel):
    reason: str | None = Field(default=None, max_length=500)


class BindingIn(BaseModel):
    account_no: Text = Field(min_length=12, max_length=40, examples=["6222020200000000001"])
    holder: Text = Field(min_length=1, max_length=200, examples=["示例钢铁有限公司"])


class InstructionIn(BaseModel):
    amount: Yuan = Field(description="yuan, at most two decimals")
    key: Text = Field(min_length=1, max_length=100, description="idempotency key")


class ReconcileIn(BaseModel):
    day: BusinessDay = Field(examples=["2026-11-30"])


@router.post("/exchange/accounts", status_code=201, summary="Apply for a trading account (开户)")
def apply(body: ApplicationIn, user: CurrentUser, ctx: Ctx) -> dict[str, Any]:
    """One account per entity; exchange staff review it (KYC) before it may trade."""
    require(user, Permission.HOLD_UNITS)
    return ctx.members.apply(
        owner=user.owner,
        kind=body.kind,
        entity_name=body.entity_name,
        identifier=body.identifier,
        by=user.username,
    ).to_document()


@router.get("/exchange/accounts/mine", summary="My trading account, operators and bank")
def mine(user: CurrentUser, ctx: Ctx) -> dict[str, Any]:
    account = ctx.members.account_of(user.owner)
    binding = ctx.funds.binding_of(user.owner)
    return {
        "account": None if account is None else account.to_document(),
        "operators": [u.username for u in ctx.identity.users_of(user.owner)],
        "bank": None if binding is None else binding.to_document(),
    }


@router.get("/exchange/accounts", summary="Applications by state (exchange staff)")
def applications(
    user: CurrentUser,
    ctx: Ctx,
    state: Annotated[Literal["applied", "approved", "rejected"], Query()] = "applied",
) -> list[dict[str, Any]]:
    require(user, Permission.RUN_EXCHANGE)
    return [a.to_document() for a in ctx.members.applications(state)]


@router.post("/exchange/accounts/{account_id}/approve", summary="Approve an application (KYC)")
def approve(account_id: AccountId, user: CurrentUser, ctx: Ctx) -> dict[str, Any]:
    require(user, Permission.RUN_EXCHANGE)
    return ctx.members.review(account_id, approve=True, reason=None, by=user.username).to_document()


@router.post("/exchange/accounts/{account_id}/reject", summary="Reject an application, saying why")
def reject(account_id: AccountId, body: ReviewIn, user: CurrentUser, ctx: Ctx) -> dict[str, Any]:
    require(user, Permission.RUN_EXCHANGE)
    return ctx.members.review(
        account_id, approve=False, reason=body.reason, by=user.username
    ).to_document()


@router.put("/funds/bank-account", summary="Bind my bank account (same name, 同名账户)")
def bind(body: BindingIn, user: CurrentUser, ctx: Ctx) -> dict[str, Any]:
    require(user, Permission.HOLD_UNITS)
    return ctx.funds.bind(
        owner=user.owner, account_no=body.account_no, holder=body.holder, by=user.username
    ).to_document()


@router.get("/funds", summary="My cash, bound bank account and latest deposits and withdrawals")
def funds(user: CurrentUser, ctx: Ctx) -> dict[str, Any]:
    cash = ctx.ledger.find_account(user.owner, "CNY")
    binding = ctx.funds.binding_of(user.owner)
    return {
        "cash_fen": 0 if cash is None else cash.balance,
        "available_fen": 0 if cash is None else cash.available,
        "bank": None if binding is None else binding.to_document(),
        "transfers": [t.to_document() for t in ctx.funds.transfers(user.owner)],
    }


@router.post("/funds/deposits", status_code=201, summary="Deposit from my bank account (入金)")
def deposit(body: InstructionIn, user: CurrentUser, ctx: Ctx, response: Response) -> dict[str, Any]:
    """201 done or failed at once; 202 while the bank has not booked it (it completes later,
    never twice); a retry with the same key returns the instruction as it stands."""
    require(user, Permission.HOLD_UNITS)
    done = ctx.funds.deposit(
        owner=user.owner, amount_fen=_fen(body.amount), key=body.key, by=user.username
    )
    return _answer(done, response)


@router.post("/funds/withdrawals", status_code=201, summary="Withdraw to my bank account (出金)")
def withdraw(
    body: InstructionIn, user: CurrentUser, ctx: Ctx, response: Response
) -> dict[str, Any]:
    """The cash is held at once; it leaves when the bank has paid, or comes back if it refuses."""
    require(user, Permission.HOLD_UNITS)
    done = ctx.funds.withdraw(
        owner=user.owner, amount_fen=_fen(body.amount), key=body.key, by=user.username
    )
    return _answer(done, response)


@router.post("/funds/resolve", summary="Ask the bank about pending instructions (staff)")
def resolve(user: CurrentUser, ctx: Ctx) -> list[dict[str, Any]]:
    require(user, Permission.RUN_EXCHANGE)
    return [t.to_document() for t in ctx.funds.resolve_pending(by=user.username)]


@router.post(
    "/funds/reconciliations", status_code=201, summary="Reconcile a day with the bank (staff)"
)
def reconcile(body: ReconcileIn, user: CurrentUser, ctx: Ctx) -> dict[str, Any]:
    require(user, Permission.RUN_EXCHANGE)
    return ctx.funds.reconcile(body.day.isoformat(), by=user.username).to_document()


@router.get("/funds/reconciliations", summary="The latest reconciliations (staff)")
def reconciliations(user: CurrentUser, ctx: Ctx) -> list[dict[str, Any]]:
    require(user, Permission.RUN_EXCHANGE)
    return [r.to_document() for r in ctx.funds.reconciliations()]


def _fen(text: str) -> int:
    try:
        return yuan_text_to_fen(text)
    except ValueError:
        raise FundsRefusedError(
            "BAD_AMOUNT", f"{text!r} is not an amount in yuan", f"{text!r} 不是以元计的金额"
        ) from None


def _answer(transfer: FundTransfer, response: Response) -> dict[str, Any]:
    if transfer.state == "pending":
        response.status_code = 202
    return transfer.to_document()
