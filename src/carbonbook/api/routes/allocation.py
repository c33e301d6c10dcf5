"""Allocation (配额分配) over HTTP: the plans, and runs that a regulator computes, a second
regulator approves or rejects, and issuing puts into holders' accounts."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from carbonbook.api.deps import Ctx, CurrentUser, require
from carbonbook.api.fields import Text
from carbonbook.identity.model import Permission
from carbonbook.registry.allocation import load_plans
from carbonbook.registry.allocations import MAX_ENTITIES, Allocations

router = APIRouter(tags=["allocation"])
RunId = Annotated[int, Path(ge=1, le=2**63 - 1, description="an allocation run id")]


class RunIn(BaseModel):
    plan: Text = Field(min_length=1, max_length=60, examples=["national-industry-2024"])
    phase: Literal["pre", "final"]
    entities: dict[Text, dict[str, Any]] = Field(
        min_length=1,
        max_length=MAX_ENTITIES,
        description="owner -> the method's inputs, e.g. {'verified_t': '94941'}",
    )


class ReasonIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


def _allocations(ctx: Ctx) -> Allocations:
    return Allocations(ctx.registry)


@router.get("/allocation/plans", summary="Allocation plans (data, with sources)")
def plans(user: CurrentUser) -> list[dict[str, Any]]:
    del user
    return [
        {
            "id": p.id,
            "name": p.name,
            "method": p.method,
            "scheme": p.scheme,
            "period": p.period,
            "asset": f"{p.unit_type}-{p.vintage}",
            "pre_allocation_share": str(p.pre_allocation_share),
            "shortfall_cap": None if p.shortfall_cap is None else str(p.shortfall_cap),
            "source": p.source,
        }
        for p in load_plans().values()
    ]


@router.post("/allocation/runs", status_code=201, summary="Compute a run (regulator)")
def compute(body: RunIn, user: CurrentUser, ctx: Ctx) -> dict[str, Any]:
    require(user, Permission.REGULATE_REGISTRY)
    run = _allocations(ctx).compute(body.plan, body.phase, body.entities, by=user.username)
    return run.to_document()


@router.get("/allocation/runs", summary="Runs, newest first (regulator)")
def runs(user: CurrentUser, ctx: Ctx) -> list[dict[str, Any]]:
    require(user, Permission.REGULATE_REGISTRY)
    return [r.to_document() for r in _allocations(ctx).runs()]


@router.get("/allocation/runs/{run_id}", summary="One run with its lines (regulator)")
def get(run_id: RunId, user: CurrentUser, ctx: Ctx) -> dict[str, Any]:
    require(user, Permission.REGULATE_REGISTRY)
    return _allocations(ctx).get(run_id).to_document()


@router.post("/allocation/runs/{run_id}/approve", summary="Approve (a second regulator)")
def approve(run_id: RunId, user: CurrentUser, ctx: Ctx) -> dict[str, Any]:
    require(user, Permission.REGULATE_REGISTRY)
    return _allocations(ctx).approve(run_id, by=user.username).to_document()


@router.post("/allocation/runs/{run_id}/reject", summary="Reject with a reason")
def reject(run_id: RunId, body: ReasonIn, user: CurrentUser, ctx: Ctx) -> dict[str, Any]:
    require(user, Permission.REGULATE_REGISTRY)
    return _allocations(ctx).reject(run_id, by=user.username, reason=body.reason).to_document()


@router.post("/allocation/runs/{run_id}/issue", summary="Issue an approved run")
def issue(run_id: RunId, user: CurrentUser, ctx: Ctx) -> dict[str, Any]:
    require(user, Permission.REGULATE_REGISTRY)
    return _allocations(ctx).issue(run_id, by=user.username).to_document()
