"""The registry and compliance over HTTP: issuance, transfers with a second approver, the
trusted list, freezing, voluntary cancellation (注销) with a public certificate, obligations,
positions and surrender (清缴) with the offset cap."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StrictInt

from carbonbook.api.deps import Ctx, CurrentUser, require
from carbonbook.api.fields import Text
from carbonbook.identity.model import Permission
from carbonbook.registry.bridge import Bridge
from carbonbook.registry.compliance import Compliance
from carbonbook.registry.service import (
    AWAITING_APPROVAL,
    MAX_TONNES,
    Certificate,
    Holding,
    Operation,
    Registry,
)

router = APIRouter(tags=["registry"])
OpId = Annotated[int, Path(ge=1, le=2**63 - 1, description="a registry operation id")]
Owner = Annotated[str, Path(min_length=1, max_length=120)]
PeriodId = Annotated[str, Path(min_length=1, max_length=40, description="e.g. national-2023")]
Tonnes = Annotated[StrictInt, Field(ge=1, le=MAX_TONNES, description="whole tonnes")]
Key = Annotated[Text, Field(min_length=1, max_length=100, description="idempotency key")]
Asset = Annotated[str, Field(min_length=3, max_length=40, examples=["CEA-2024"])]
Price = Annotated[int | None, Query(ge=0, le=10**9, description="market price, fen per tonne")]


class IssueIn(BaseModel):
    unit_type: str = Field(min_length=1, max_length=20, examples=["CEA"])
    vintage: StrictInt = Field(ge=1990, le=2099)
    to: Text = Field(min_length=1, max_length=120, description="the receiving holder")
    quantity: Tonnes
    key: Key
    note: str = Field(default="", max_length=200)


class TransferIn(BaseModel):
    to: Text = Field(min_length=1, max_length=120)
    asset: Asset
    quantity: Tonnes
    key: Key


class ReasonIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


class FreezeIn(BaseModel):
    owner: Text = Field(min_length=1, max_length=120)
    frozen: bool
    reason: str = Field(min_length=1, max_length=500)


class CancelIn(BaseModel):
    asset: Asset
    quantity: Tonnes
    beneficiary: Text = Field(min_length=1, max_length=200)
    reason: str = Field(min_length=1, max_length=500)
    key: Key


class ObligationIn(BaseModel):
    verified_t: StrictInt = Field(ge=0, le=MAX_TONNES)
    source: str = Field(min_length=1, max_length=200, examples=["report:42"])


class SurrenderIn(BaseModel):
    asset: Asset
    quantity: Tonnes
    key: Key


class OperationOut(BaseModel):
    id: int
    kind: str
    key: str
    asset: str | None
    quantity: int
    from_: str | None = Field(alias="from")
    to: str | None
    period: str | None
    role: str | None
    state: str
    requested_by: str
    decided_by: str | None
    serials: list[str]
    reason: str | None
    certificate: str | None
    replayed: bool

    model_config = {"populate_by_name": True}


class HoldingOut(BaseModel):
    asset: str
    balance_t: int
    held_t: int
    available_t: int
    frozen: bool
    serials: list[str]


class CertificateOut(BaseModel):
    id: str
    holder: str
    beneficiary: str
    reason: str
    asset: str
    quantity_t: int
    serials: list[str]
    cancelled_at_us: int


def _op(op: Operation) -> OperationOut:
    return OperationOut.model_validate(op.to_document())


def _holding(h: Holding) -> HoldingOut:
    return HoldingOut(
        asset=h.asset,
        balance_t=h.balance,
        held_t=h.held,
        available_t=h.available,
        frozen=h.frozen,
        serials=list(h.serials),
    )


def _cert(c: Certificate) -> CertificateOut:
    return CertificateOut(**c.to_document())


def _registry(ctx: Ctx) -> Registry:
    return ctx.registry


def _is_regulator(user: CurrentUser) -> bool:
    return user.can(Permission.REGULATE_REGISTRY)


def _holder_or_regulator(user: CurrentUser) -> None:
    """A waiting transfer is decided by another person of the sender, or by the regulator
    (who holds no units of its own)."""
    if not _is_regulator(user):
        require(user, Permission.HOLD_UNITS)


def _whose(user: CurrentUser, owner: str | None) -> str:
    """The owner a read is about: one's own, or anyone's for the regulator."""
    if owner is None or owner == user.owner:
        return user.owner
    require(user, Permission.REGULATE_REGISTRY)
    return owner


@router.post(
    "/registry/issuances",
    response_model=OperationOut,
    status_code=202,
    summary="Ask to issue new units to a holder (regulator); a second regulator approves",
)
def issue(body: IssueIn, user: CurrentUser, ctx: Ctx) -> OperationOut:
    require(user, Permission.REGULATE_REGISTRY)
    op = _registry(ctx).request_issue(
        unit_type=body.unit_type,
        vintage=body.vintage,
        to_owner=body.to,
        quantity=body.quantity,
        key=body.key,
        by=user.username,
        note=body.note,
    )
    return _op(op)


@router.post(
    "/registry/issuances/{op_id}/approve",
    response_model=OperationOut,
    summary="Approve a requested issuance (another regulator): the units are issued",
)
def approve_issue(op_id: OpId, user: CurrentUser, ctx: Ctx) -> OperationOut:
    require(user, Permission.REGULATE_REGISTRY)
    return _op(_registry(ctx).approve_issue(op_id, by=user.username))


@router.get("/registry/holdings", response_model=list[HoldingOut], summary="Units held")
def holdings(
    user: CurrentUser, ctx: Ctx, owner: Annotated[str | None, Query(max_length=120)] = None
) -> list[HoldingOut]:
    return [_holding(h) for h in _registry(ctx).holdings(_whose(user, owner))]


@router.get("/registry/operations", response_model=list[OperationOut], summary="Operations")
def operations(
    user: CurrentUser,
    ctx: Ctx,
    owner: Annotated[str | None, Query(max_length=120)] = None,
    awaiting: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[OperationOut]:
    everyone = owner is None and _is_regulator(user)
    whose = None if everyone else _whose(user, owner)
    return [_op(o) for o in _registry(ctx).operations(whose, limit=limit, awaiting=awaiting)]


@router.post(
    "/registry/transfers",
    response_model=OperationOut,
    status_code=201,
    responses={202: {"description": "reserved, awaiting a second approver"}},
    summary="Transfer units with their serials (a second person approves large or untrusted)",
)
def transfer(body: TransferIn, user: CurrentUser, ctx: Ctx, response: Response) -> OperationOut:
    require(user, Permission.HOLD_UNITS)
    op = _registry(ctx).transfer(
        from_owner=user.owner,
        to_owner=body.to,
        asset=body.asset,
        quantity=body.quantity,
        key=body.key,
        by=user.username,
    )
    if op.state == AWAITING_APPROVAL:
        response.status_code = 202
    return _op(op)


@router.post(
    "/registry/transfers/{op_id}/approve",
    response_model=OperationOut,
    summary="Approve a waiting transfer (another person of the sender, or the regulator)",
)
def approve(op_id: OpId, user: CurrentUser, ctx: Ctx) -> OperationOut:
    _holder_or_regulator(user)
    op = _registry(ctx).approve(
        op_id, approver_owner=user.owner, by=user.username, regulator=_is_regulator(user)
    )
    return _op(op)


@router.post(
    "/registry/transfers/{op_id}/reject",
    response_model=OperationOut,
    summary="Reject or withdraw a waiting transfer; the reservation is released",
)
def reject(op_id: OpId, body: ReasonIn, user: CurrentUser, ctx: Ctx) -> OperationOut:
    _holder_or_regulator(user)
    op = _registry(ctx).reject(
        op_id,
        approver_owner=user.owner,
        by=user.username,
        reason=body.reason,
        regulator=_is_regulator(user),
    )
    return _op(op)


@router.get("/registry/trusted", response_model=list[str], summary="My trusted counterparties")
def trusted(user: CurrentUser, ctx: Ctx) -> list[str]:
    return _registry(ctx).trusted(user.owner)


@router.put(
    "/registry/trusted/{counterparty}",
    status_code=204,
    summary="Trust a counterparty: transfers to it up to the threshold need no second person",
)
def trust(counterparty: Owner, user: CurrentUser, ctx: Ctx) -> Response:
    require(user, Permission.HOLD_UNITS)
    _registry(ctx).trust(user.owner, counterparty, by=user.username)
    return Response(status_code=204)


@router.delete("/registry/trusted/{counterparty}", status_code=204, summary="Stop trusting")
def distrust(counterparty: Owner, user: CurrentUser, ctx: Ctx) -> Response:
    require(user, Permission.HOLD_UNITS)
    _registry(ctx).distrust(user.owner, counterparty, by=user.username)
    return Response(status_code=204)


@router.post(
    "/registry/freeze",
    response_model=list[str],
    summary="Freeze or unfreeze a holder's unit accounts (regulator); returns the assets",
)
def freeze(body: FreezeIn, user: CurrentUser, ctx: Ctx) -> list[str]:
    require(user, Permission.REGULATE_REGISTRY)
    return _registry(ctx).freeze(
        body.owner, frozen=body.frozen, by=user.username, reason=body.reason
    )


@router.post(
    "/registry/cancellations",
    response_model=CertificateOut,
    status_code=201,
    summary="Voluntarily cancel (注销) units for a beneficiary; returns the certificate",
)
def cancel(body: CancelIn, user: CurrentUser, ctx: Ctx) -> CertificateOut:
    require(user, Permission.HOLD_UNITS)
    cert = _registry(ctx).cancel(
        owner=user.owner,
        asset=body.asset,
        quantity=body.quantity,
        beneficiary=body.beneficiary,
        reason=body.reason,
        key=body.key,
        by=user.username,
    )
    return _cert(cert)


@router.get(
    "/registry/certificates/{cert_id}",
    response_model=CertificateOut,
    summary="A public cancellation certificate (no login)",
)
def certificate(
    cert_id: Annotated[str, Path(min_length=1, max_length=32)], ctx: Ctx
) -> CertificateOut:
    return _cert(_registry(ctx).certificate(cert_id))


# -- compliance (履约) ---------------------------------------------------------------------------


@router.put(
    "/compliance/{period}/obligations/{owner}",
    status_code=204,
    responses={202: {"description": "an override of a locked report's figure, awaiting"}},
    summary="Record an entity's verified emissions (regulator); over a locked report's figure "
    "it waits for a second regulator",
    tags=["compliance"],
    response_model=None,
)
def set_obligation(
    period: PeriodId, owner: Owner, body: ObligationIn, user: CurrentUser, ctx: Ctx
) -> Response | OperationOut:
    require(user, Permission.REGULATE_REGISTRY)
    waiting = Compliance(_registry(ctx)).override_obligation(
        period, owner, body.verified_t, source=body.source, by=user.username
    )
    if waiting is None:
        return Response(status_code=204)
    return JSONResponse(_op(waiting).model_dump(by_alias=True), status_code=202)


@router.post(
    "/compliance/obligation-overrides/{op_id}/approve",
    response_model=OperationOut,
    summary="Approve another regulator's override of a locked report's obligation",
    tags=["compliance"],
)
def approve_override(op_id: OpId, user: CurrentUser, ctx: Ctx) -> OperationOut:
    require(user, Permission.REGULATE_REGISTRY)
    return _op(Compliance(_registry(ctx)).approve_override(op_id, by=user.username))


@router.get(
    "/compliance/{period}/position",
    summary="Holdings against the obligation, and its value at a price",
    tags=["compliance"],
)
def position(
    period: PeriodId,
    user: CurrentUser,
    ctx: Ctx,
    owner: Annotated[str | None, Query(max_length=120)] = None,
    price_fen: Price = None,
) -> dict[str, Any]:
    found = Compliance(_registry(ctx)).position(period, _whose(user, owner), price_fen=price_fen)
    return found.to_document()


@router.post(
    "/compliance/{period}/surrenders",
    response_model=OperationOut,
    status_code=201,
    summary="Surrender (清缴) units against the obligation; offsets within the cap",
    tags=["compliance"],
)
def surrender(period: PeriodId, body: SurrenderIn, user: CurrentUser, ctx: Ctx) -> OperationOut:
    require(user, Permission.HOLD_UNITS)
    op = Compliance(_registry(ctx)).surrender(
        period, user.owner, body.asset, body.quantity, key=body.key, by=user.username
    )
    return _op(op)


@router.get(
    "/compliance/{period}/report",
    summary="Every obligated entity: surrendered, shortfall, penalty exposure (regulator)",
    tags=["compliance"],
)
def report(
    period: PeriodId, user: CurrentUser, ctx: Ctx, price_fen: Price = None
) -> list[dict[str, Any]]:
    require(user, Permission.REGULATE_REGISTRY)
    lines = Compliance(_registry(ctx)).report(period, price_fen=price_fen)
    return [line.to_document() for line in lines]


@router.post(
    "/compliance/{period}/settlement",
    summary="The deadline run: surrender each entity's eligible allowances (regulator)",
    tags=["compliance"],
)
def settle(period: PeriodId, user: CurrentUser, ctx: Ctx) -> dict[str, Any]:
    require(user, Permission.REGULATE_REGISTRY)
    return Compliance(_registry(ctx)).settle(period, by=user.username).to_document()


# -- the bridge from grams to tonnes -------------------------------------------------------------


class BridgeIn(BaseModel):
    unit_type: str = Field(min_length=1, max_length=20, examples=["PCER-BJ"])
    vintage: StrictInt = Field(ge=1990, le=2099)
    aggregator: Text = Field(min_length=1, max_length=120)


@router.post(
    "/registry/pcer-runs",
    status_code=201,
    summary="Aggregate new personal reductions into whole tonnes of PCER (regulator)",
)
def pcer_run(body: BridgeIn, user: CurrentUser, ctx: Ctx) -> dict[str, Any]:
    require(user, Permission.REGULATE_REGISTRY)
    run = Bridge(_registry(ctx)).run(
        unit_type=body.unit_type,
        vintage=body.vintage,
        aggregator=body.aggregator,
        by=user.username,
    )
    return run.to_document()


@router.get("/registry/pcer-runs", summary="Every bridge run and its Merkle root (public)")
def pcer_runs(ctx: Ctx) -> list[dict[str, Any]]:
    return [run.to_document() for run in Bridge(_registry(ctx)).runs()]


@router.get(
    "/me/pcer-proofs",
    summary="Inclusion proofs of my events in the PCER runs (RFC 6962 Merkle paths)",
)
def my_proofs(user: CurrentUser, ctx: Ctx) -> list[dict[str, Any]]:
    return [p.to_document() for p in Bridge(_registry(ctx)).proofs_of(user.username)]
