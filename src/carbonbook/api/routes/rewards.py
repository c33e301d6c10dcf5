"""Points and rewards: the catalogue, a person's redemptions, and sponsors accepting vouchers."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field, StrictInt

from carbonbook.api.deps import Ctx, CurrentUser, SignedPartner, require
from carbonbook.api.errors import ApiError
from carbonbook.api.fields import BusinessDay, Text
from carbonbook.identity.model import Permission, Role
from carbonbook.personal.rewards import Redemption, Reward, Rewards, reward_from_mapping

router = APIRouter(tags=["rewards"])
MAX_POINTS = 2**53 - 1


class RewardIn(BaseModel):
    title_zh: Text = Field(min_length=1, max_length=200)
    title_en: Text = Field(min_length=1, max_length=200)
    sponsor: Text = Field(min_length=1, max_length=120, description="the partner that honours it")
    points: StrictInt = Field(ge=1, le=MAX_POINTS)
    stock: StrictInt = Field(ge=0, le=MAX_POINTS)
    valid_from: BusinessDay
    valid_until: BusinessDay
    voucher_days: StrictInt = Field(ge=1, le=3650)


class RewardOut(RewardIn):
    id: str
    # What is stored is shown as it is (a reward loaded from a file may run past 2100).
    valid_from: date
    valid_until: date


class RedeemIn(BaseModel):
    reward: Text = Field(min_length=1, max_length=60)
    key: Text = Field(min_length=1, max_length=100, description="idempotency key of this attempt")


class RedemptionOut(BaseModel):
    id: int
    reward: str
    points: int
    voucher: str
    redeemed_at: str
    expires_at: str
    used_at: str | None


def _out(reward: Reward) -> RewardOut:
    return RewardOut(**reward.to_document())


def _redemption(found: Redemption) -> RedemptionOut:
    document: dict[str, Any] = found.to_document()
    document.pop("person")
    return RedemptionOut(**document)


@router.get("/rewards", response_model=list[RewardOut], summary="The rewards catalogue (积分商城)")
def catalogue(ctx: Ctx) -> list[RewardOut]:
    return [_out(r) for r in Rewards(ctx.engine).catalogue()]


@router.put(
    "/rewards/{reward_id}",
    response_model=RewardOut,
    summary="Add a reward or change its terms and stock (administrators)",
)
def put_reward(reward_id: str, body: RewardIn, user: CurrentUser, ctx: Ctx) -> RewardOut:
    require(user, Permission.MANAGE_REWARDS)
    reward = reward_from_mapping({"id": reward_id, **body.model_dump()}, f"reward {reward_id}")
    Rewards(ctx.engine).put([reward], actor=f"user:{user.id}")
    return _out(reward)


@router.post(
    "/me/redemptions",
    response_model=RedemptionOut,
    status_code=201,
    summary="Spend points on a reward; a retry with the same key returns the first result",
)
def redeem(body: RedeemIn, user: CurrentUser, ctx: Ctx) -> RedemptionOut:
    if user.role is not Role.PERSON:
        raise ApiError(403, "FORBIDDEN", "only a person redeems points", "只有个人用户可以兑换积分")
    return _redemption(
        Rewards(ctx.engine).redeem(user.username, body.reward, body.key, owner=user.owner)
    )


@router.get("/me/redemptions", response_model=list[RedemptionOut], summary="My vouchers")
def my_redemptions(user: CurrentUser, ctx: Ctx) -> list[RedemptionOut]:
    return [_redemption(r) for r in Rewards(ctx.engine).redemptions_of(user.username)]


@router.post(
    "/partner/vouchers/{code}/use",
    response_model=RedemptionOut,
    summary="A sponsor accepts a voucher at its counter (signed partner request)",
)
def use_voucher(code: str, partner: SignedPartner, ctx: Ctx) -> RedemptionOut:
    return _redemption(Rewards(ctx.engine).use_voucher(code, partner.code))
