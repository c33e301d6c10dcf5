"""Log in for a token, see who you are."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from carbonbook.api.deps import Ctx, CurrentUser, SignedPartner, login_failed, login_gate
from carbonbook.api.errors import ApiError
from carbonbook.api.fields import Text
from carbonbook.errors import DomainError

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
    if not login_gate(request, ctx, body.username):
        raise ApiError(429, "RATE_LIMITED", "too many login attempts", "登录尝试过于频繁")
    try:
        user = ctx.identity.authenticate(body.username, body.password)
    except DomainError:
        login_failed(ctx, body.username)
        raise
    token = ctx.identity.issue_token(user, body.token_name)
    return TokenOut(token=token, user_id=user.id, role=user.role.value)


class TokenInfoOut(BaseModel):
    id: str
    name: str
    created_at: int  # microseconds since the epoch, UTC
    expires_at: int | None
    revoked: bool


@router.get(
    "/auth/tokens", response_model=list[TokenInfoOut], summary="Your API tokens (never secrets)"
)
def list_tokens(user: CurrentUser, ctx: Ctx) -> list[TokenInfoOut]:
    return [
        TokenInfoOut(
            id=t.id,
            name=t.name,
            created_at=t.created_at,
            expires_at=t.expires_at,
            revoked=t.revoked,
        )
        for t in ctx.identity.tokens(user)
    ]


@router.delete("/auth/tokens/{token_id}", status_code=204, summary="Revoke one of your API tokens")
def revoke_token(token_id: str, user: CurrentUser, ctx: Ctx) -> None:
    ctx.identity.revoke_token_id(user, token_id)


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
