"""Photo check-ins: a person uploads, a reviewer (verifier or regulator) approves or rejects."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Path, Query, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, Field

from carbonbook.api.deps import Ctx, CurrentUser, require
from carbonbook.api.errors import ApiError
from carbonbook.identity.model import Permission, Role
from carbonbook.methodology.registry import get as get_methodology
from carbonbook.personal.checkins import MAX_BYTES, Checkin, Checkins, PhotoTooLargeError

router = APIRouter(tags=["check-ins"])
CheckinId = Annotated[int, Path(ge=1, le=2**63 - 1, description="a check-in id")]
DEFAULT_CHECKIN_METHODOLOGY = "ali-88@2023"  # 88碳账户: photo check-ins


class CheckinOut(BaseModel):
    id: int
    person: str
    behaviour: str
    methodology: str
    status: str
    reason: str | None


class RejectIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


def _out(checkin: Checkin) -> CheckinOut:
    return CheckinOut(**checkin.to_document())


@router.post(
    "/me/checkins",
    response_model=CheckinOut,
    status_code=201,
    summary="Upload a photo check-in (拍照打卡) for review",
)
async def upload(
    user: CurrentUser,
    ctx: Ctx,
    behaviour: Annotated[str, Form(min_length=1, max_length=60)],
    photo: Annotated[UploadFile, File(description="JPEG, PNG or WebP, at most 5 MiB")],
    methodology: Annotated[str, Query(max_length=80)] = DEFAULT_CHECKIN_METHODOLOGY,
) -> CheckinOut:
    if user.role is not Role.PERSON:
        raise ApiError(403, "FORBIDDEN", "only a person checks in", "只有个人用户可以打卡")
    data = await photo.read(MAX_BYTES + 1)  # never more than one byte past the limit
    if len(data) > MAX_BYTES:
        raise PhotoTooLargeError(
            f"the photo is over the {MAX_BYTES:,}-byte limit", f"照片超过 {MAX_BYTES:,} 字节上限"
        )
    chosen = get_methodology(methodology)
    return _out(Checkins(ctx.engine).submit(user.username, behaviour, data, chosen))


@router.get("/me/checkins", response_model=list[CheckinOut], summary="My check-ins")
def mine(user: CurrentUser, ctx: Ctx) -> list[CheckinOut]:
    return [_out(c) for c in Checkins(ctx.engine).of(user.username)]


@router.get("/review/checkins", response_model=list[CheckinOut], summary="The reviewer queue")
def review_queue(
    user: CurrentUser, ctx: Ctx, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[CheckinOut]:
    require(user, Permission.REVIEW_CHECKINS)
    return [_out(c) for c in Checkins(ctx.engine).queue(limit)]


@router.get(
    "/review/checkins/{checkin_id}/photo",
    response_class=Response,
    summary="A check-in's photo, for its reviewer or its owner",
)
def checkin_photo(checkin_id: CheckinId, user: CurrentUser, ctx: Ctx) -> Response:
    media_type, data, person = Checkins(ctx.engine).photo(checkin_id)
    if person != user.username:
        require(user, Permission.REVIEW_CHECKINS)
    return Response(data, media_type=media_type, headers={"Cache-Control": "private, no-store"})


@router.post(
    "/review/checkins/{checkin_id}/approve",
    summary="Approve a check-in: its act is credited once, as screenshot evidence",
)
def approve(checkin_id: CheckinId, user: CurrentUser, ctx: Ctx) -> dict[str, Any]:
    require(user, Permission.REVIEW_CHECKINS)
    methodology = get_methodology(DEFAULT_CHECKIN_METHODOLOGY)
    return Checkins(ctx.engine).approve(checkin_id, f"user:{user.id}", methodology)


@router.post(
    "/review/checkins/{checkin_id}/reject",
    response_model=CheckinOut,
    summary="Reject a check-in with a reason",
)
def reject(
    checkin_id: CheckinId,
    body: RejectIn,
    user: CurrentUser,
    ctx: Ctx,
) -> CheckinOut:
    require(user, Permission.REVIEW_CHECKINS)
    return _out(Checkins(ctx.engine).reject(checkin_id, f"user:{user.id}", body.reason))
