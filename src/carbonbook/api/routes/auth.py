"""Log in for a token, see who you are."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from carbonbook.api.deps import Ctx, CurrentUser, SignedPartner
from carbonbook.api.errors import ApiError
from carbonbook.api.fields import Text

router = APIRouter(tags=["auth"])


class LoginIn(BaseModel):
    username: Text = Field(min_length=1, max_length=120)
    password: str = Field(min_length=1, max_length=200)
    token_name: Text = Field(default="api", max_length=120)


class TokenOut(BaseModel):
    token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    user_id: int
    role: str


class MeOut(BaseModel):
    id: int
    username: str
    display_name: str
    role: str
    locale: str
    owner: str


class PartnerOut(BaseModel):
    code: str
    name: str
    rate_limit_per_minute: int


@router.post("/auth/token", response_model=TokenOut, summary="Exchange a password for an API token")
def login(body: LoginIn, request: Request, ctx: Ctx) -> TokenOut:
    client = request.client.host if request.client else "?"
    if not ctx.limiter.allow(f"login:{client}", ctx.login_per_minute):
        raise ApiError(429, "RATE_LIMITED", "too many login attempts", "登录尝试过于频繁")
    user = ctx.identity.authenticate(body.username, body.password)
    token = ctx.identity.issue_token(user, body.token_name)
    return TokenOut(token=token, user_id=user.id, role=user.role.value)


@router.get("/me", response_model=MeOut, summary="The user behind this token or session")
def me(user: CurrentUser) -> MeOut:
    return MeOut(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=user.role.value,
        locale=user.locale,
        owner=user.owner,
    )


@router.get(
    "/partner/whoami",
    response_model=PartnerOut,
    summary="Check a partner platform's HMAC signing (signed request)",
)
def partner_whoami(partner: SignedPartner) -> PartnerOut:
    return PartnerOut(
        code=partner.code, name=partner.name, rate_limit_per_minute=partner.rate_limit_per_minute
    )
