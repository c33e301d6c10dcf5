"""Photo check-ins (拍照打卡) in the browser: a person uploads a photo for a green act and sees
its review; a reviewer works through the queue, photo beside each, approving or rejecting
with a reason. The same `Checkins` service as the API, so every check applies."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from carbonbook.api.deps import context
from carbonbook.api.routes.checkins import DEFAULT_CHECKIN_METHODOLOGY
from carbonbook.errors import DomainError
from carbonbook.identity.model import Permission, Role, User
from carbonbook.methodology.registry import get as get_methodology
from carbonbook.personal.checkins import MAX_BYTES, Checkins, PhotoTooLargeError
from carbonbook.web.pages import (
    Notice,
    error_page,
    form_user,
    page_user,
    render,
)

router = APIRouter(include_in_schema=False)

PEOPLE_ONLY = Notice("FORBIDDEN", "Only a person checks in.", "只有个人用户可以打卡。")
REVIEWERS_ONLY = Notice(
    "FORBIDDEN", "Only a reviewer sees the queue.", "只有审核人员可以查看待审核队列。"
)


def _person(request: Request) -> User | Response:
    return page_user(request, lambda user: user.role is Role.PERSON, PEOPLE_ONLY)


def _reviewer(request: Request) -> User | Response:
    return page_user(request, lambda user: user.can(Permission.REVIEW_CHECKINS), REVIEWERS_ONLY)


@router.get("/checkins", response_class=HTMLResponse, response_model=None)
def checkins_page(request: Request, done: int | None = None) -> Response:
    found = _person(request)
    if not isinstance(found, User):
        return found
    return _mine(request, found, done=done)


@router.post("/checkins", response_class=HTMLResponse, response_model=None)
async def upload(
    request: Request,
    behaviour: Annotated[str, Form(max_length=60)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
    photo: Annotated[UploadFile | None, File()] = None,
) -> Response:
    found = form_user(request, csrf, _person)
    if not isinstance(found, User):
        return found
    try:
        data = await photo.read(MAX_BYTES + 1) if photo is not None else b""
        if len(data) > MAX_BYTES:
            raise PhotoTooLargeError(
                f"the photo is over the {MAX_BYTES:,}-byte limit",
                f"照片超过 {MAX_BYTES:,} 字节上限",
            )
        methodology = get_methodology(DEFAULT_CHECKIN_METHODOLOGY)
        checkin = Checkins(context(request).engine).submit(
            found.username, behaviour, data, methodology
        )
    except DomainError as exc:
        notice = Notice.of(exc)
        return _mine(request, found, notice=notice, status=exc.http_status)
    return RedirectResponse(f"/checkins?done={checkin.id}", status_code=303)


@router.get("/review", response_class=HTMLResponse, response_model=None)
def review_page(request: Request) -> Response:
    found = _reviewer(request)
    if not isinstance(found, User):
        return found
    return _queue(request, found)


@router.post("/review/{checkin_id}/{action}", response_class=HTMLResponse, response_model=None)
def review(
    request: Request,
    checkin_id: int,
    action: str,
    reason: Annotated[str, Form(max_length=500)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    found = form_user(request, csrf, _reviewer)
    if not isinstance(found, User):
        return found
    checkins = Checkins(context(request).engine)
    try:
        if action == "approve":
            methodology = get_methodology(DEFAULT_CHECKIN_METHODOLOGY)
            result = checkins.approve(checkin_id, f"user:{found.id}", methodology)
            if result["status"] != "approved":  # approved, but nothing credited: say why
                said = Notice(result["code"], result["message"], result["message_zh"])
                return _queue(request, found, notice=said)
        elif action == "reject":
            checkins.reject(checkin_id, f"user:{found.id}", reason)
        else:
            return error_page(request, 404)
    except DomainError as exc:
        notice = Notice.of(exc)
        return _queue(request, found, notice=notice, status=exc.http_status)
    return RedirectResponse("/review", status_code=303)


def _mine(
    request: Request,
    user: User,
    *,
    done: int | None = None,
    notice: Notice | None = None,
    status: int = 200,
) -> HTMLResponse:
    methodology = get_methodology(DEFAULT_CHECKIN_METHODOLOGY)
    return render(
        request,
        "checkins.html",
        user=user,
        behaviours=sorted(methodology.behaviours),
        methodology=methodology.ref,
        checkins=Checkins(context(request).engine).of(user.username),
        done=done,
        notice=notice,
        status=status,
    )


def _queue(
    request: Request, user: User, *, notice: Notice | None = None, status: int = 200
) -> HTMLResponse:
    return render(
        request,
        "review.html",
        user=user,
        queue=Checkins(context(request).engine).queue(50),
        notice=notice,
        status=status,
    )
