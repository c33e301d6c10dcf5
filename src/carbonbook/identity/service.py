"""Users, passwords (argon2), API tokens, and HMAC-signed partner requests.

Secrets are never stored in the clear where they need not be read back: passwords are argon2
hashes and API tokens are stored as their SHA-256. Partner HMAC secrets must be read back to
verify signatures, so they are stored as given and the database must be access-controlled.
Every change is appended to the hash-chained audit log with user ids, never names.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import time
from dataclasses import dataclass, replace

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from carbonbook import auditlog
from carbonbook.db.engine import reading
from carbonbook.db.ids import allocate_ids
from carbonbook.db.schema import (
    api_tokens,
    partner_platforms,
    request_nonces,
    users,
    web_sessions,
)
from carbonbook.identity import errors
from carbonbook.identity.model import Role, User

# Signed partner requests older or newer than this are refused; nonces are kept this long.
SIGNATURE_WINDOW_S = 300
USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{1,119}$")
PARTNER_CODE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,59}$")
OWNER_RE = re.compile(r"^[a-z][a-z0-9_-]{0,39}(:[A-Za-z0-9_.@+-]{1,79})?$")  # kind[:name]
SCOPE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,79}$")  # behaviours, ID@VERSION
MIN_PASSWORD = 8
TOKEN_TTL_ENV = "CARBONBOOK_TOKEN_TTL_DAYS"  # noqa: S105 - the variable's name, not a secret
DEFAULT_TOKEN_TTL_DAYS = 30

_hasher = PasswordHasher()
# Verifying against this hash when the user does not exist keeps the timing the same.
_DUMMY_HASH = _hasher.hash("carbonbook-timing-equaliser")


def _now_us() -> int:
    return time.time_ns() // 1000


# Every API request reads its token and user: one statement, built once.
_TOKEN_USER = (
    sa.select(users, api_tokens.c.expires_at, api_tokens.c.revoked)
    .join_from(api_tokens, users, users.c.id == api_tokens.c.user_id)
    .where(api_tokens.c.token_hash == sa.bindparam("token_hash"))
)


def _token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def token_ttl_s() -> int | None:
    """How long a new API token lives: $CARBONBOOK_TOKEN_TTL_DAYS days (30 unless set; 0 means
    tokens never expire, for a deployment that revokes them by hand)."""
    text = os.environ.get(TOKEN_TTL_ENV, "").strip()
    try:
        days = int(text) if text else DEFAULT_TOKEN_TTL_DAYS
    except ValueError:
        days = DEFAULT_TOKEN_TTL_DAYS
    return None if days <= 0 else days * 86400


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """An API token as its owner may see it: never the secret, which is not stored."""

    id: str  # the first 16 hex digits of the token's SHA-256: names it, reveals nothing
    name: str
    created_at: int
    expires_at: int | None
    revoked: bool


def signature_base(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    """What a partner signs: method, path (with query), timestamp, nonce and the body's hash."""
    return "\n".join(
        [method.upper(), path, timestamp, nonce, hashlib.sha256(body).hexdigest()]
    ).encode()


def sign(secret: str, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    """The hex HMAC-SHA256 a partner sends in `X-Carbonbook-Signature`."""
    return hmac.new(
        secret.encode(), signature_base(method, path, timestamp, nonce, body), hashlib.sha256
    ).hexdigest()


@dataclass(frozen=True, slots=True)
class Partner:
    code: str
    name: str
    user_id: int
    key_id: str
    rate_limit_per_minute: int
    # The scope the operator set (the credit gate applies it): one methodology ID@VERSION,
    # the behaviours and the evidence tiers the partner may claim. None/empty: not set.
    methodology: str | None = None
    behaviours: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()


def _partner(row: sa.Row[tuple[object, ...]]) -> Partner:
    m = row._mapping  # noqa: SLF001 - SQLAlchemy's public mapping view of a row
    return Partner(
        str(m["code"]),
        str(m["name"]),
        int(str(m["user_id"])),
        str(m["key_id"]),
        int(str(m["rate_limit_per_minute"])),
        None if m["methodology"] is None else str(m["methodology"]),
        tuple(json.loads(str(m["behaviours"]))) if m["behaviours"] else (),
        tuple(json.loads(str(m["evidence"]))) if m["evidence"] else (),
    )


class Identity:
    """The identity service over one database."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    # -- users ----------------------------------------------------------------------------------

    def register(
        self,
        username: str,
        password: str,
        role: Role,
        display_name: str | None = None,
        owner: str | None = None,
        locale: str = "zh",
        actor: str = "system",
    ) -> User:
        """Create a user; the username must be free and the password at least 8 characters."""
        if not USERNAME_RE.match(username):
            raise errors.BadUserInputError(
                f"username {username!r} must be 2-120 letters, digits or _.@+-",
                f"用户名 {username!r} 须为 2-120 个字母、数字或 _.@+- 字符",
                field="username",
            )
        if len(password) < MIN_PASSWORD:
            raise errors.BadUserInputError(
                f"password must have at least {MIN_PASSWORD} characters",
                f"密码至少需要 {MIN_PASSWORD} 个字符",
                field="password",
            )
        if locale not in ("zh", "en"):
            locale = "zh"
        password_hash = _hasher.hash(password)
        with self.engine.begin() as conn:
            if conn.execute(sa.select(users.c.id).where(users.c.username == username)).first():
                raise errors.UsernameTakenError(
                    f"username {username!r} is taken", f"用户名 {username!r} 已被占用"
                )
            user_id = allocate_ids(conn)
            conn.execute(
                users.insert().values(
                    id=user_id,
                    username=username,
                    display_name=display_name or username,
                    role=role.value,
                    password_hash=password_hash,
                    locale=locale,
                    owner=owner or f"{role.value}:{user_id}",
                    created_at=_now_us(),
                )
            )
            auditlog.append(conn, actor, "user.register", f"user:{user_id}", {"role": role.value})
        return self.user(user_id)

    def user(self, user_id: int) -> User:
        with reading(self.engine) as conn:
            row = conn.execute(sa.select(users).where(users.c.id == user_id)).first()
        if row is None or row.disabled:
            raise errors.AuthenticationError("no such user", "用户不存在")
        return _user(row)

    def find(self, username: str) -> User | None:
        with reading(self.engine) as conn:
            row = conn.execute(sa.select(users).where(users.c.username == username)).first()
        return None if row is None else _user(row)

    def users_of(self, owner: str) -> list[User]:
        """The users acting for a ledger owner (an entity's operators), by name."""
        with reading(self.engine) as conn:
            rows = conn.execute(
                sa.select(users)
                .where(users.c.owner == owner, users.c.disabled.is_(False))
                .order_by(users.c.username)
            )
            return [_user(r) for r in rows]

    def authenticate(self, username: str, password: str) -> User:
        """The user with this username and password, or BadCredentialsError (same for both)."""
        with reading(self.engine) as conn:
            row = conn.execute(sa.select(users).where(users.c.username == username)).first()
        stored = _DUMMY_HASH if row is None else row.password_hash
        try:
            _hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            row = None
        if row is None or row.disabled:
            raise errors.BadCredentialsError("wrong username or password", "用户名或密码错误")
        if _hasher.check_needs_rehash(row.password_hash):
            with self.engine.begin() as conn:
                conn.execute(
                    users.update()
                    .where(users.c.id == row.id)
                    .values(password_hash=_hasher.hash(password))
                )
        return _user(row)

    def set_locale(self, user_id: int, locale: str) -> None:
        if locale in ("zh", "en"):
            with self.engine.begin() as conn:
                conn.execute(users.update().where(users.c.id == user_id).values(locale=locale))

    # -- API tokens -----------------------------------------------------------------------------

    def issue_token(self, user: User, name: str = "api", ttl_s: int | bool | None = True) -> str:
        """A new bearer token for scripts; only its hash is stored, so show it once. It expires
        after `ttl_s` seconds (None: never; by default $CARBONBOOK_TOKEN_TTL_DAYS)."""
        if ttl_s is True:
            ttl_s = token_ttl_s()
        token = "cbk_" + secrets.token_urlsafe(32)
        now = _now_us()
        with self.engine.begin() as conn:
            conn.execute(
                api_tokens.insert().values(
                    token_hash=_token_hash(token),
                    user_id=user.id,
                    name=name[:120],
                    created_at=now,
                    expires_at=None if ttl_s is None else now + ttl_s * 1_000_000,
                )
            )
            auditlog.append(
                conn, f"user:{user.id}", "token.issue", f"user:{user.id}", {"name": name}
            )
        return token

    def user_for_token(self, token: str) -> User:
        """The user a bearer token stands for: one prebuilt read on every API request."""
        with reading(self.engine) as conn:
            row = conn.execute(_TOKEN_USER, {"token_hash": _token_hash(token)}).first()
        if (
            row is None
            or row.revoked
            or (row.expires_at is not None and row.expires_at < _now_us())
        ):
            raise errors.AuthenticationError(
                "the API token is unknown, expired or revoked", "API 令牌无效、已过期或已吊销"
            )
        if row.disabled:
            raise errors.AuthenticationError("no such user", "用户不存在")
        return _user(row)

    def revoke_token(self, token: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                api_tokens.update()
                .where(api_tokens.c.token_hash == _token_hash(token))
                .values(revoked=True)
            )

    def tokens(self, user: User) -> list[TokenInfo]:
        """The user's API tokens, newest first (expired and revoked ones too, marked)."""
        with reading(self.engine) as conn:
            rows = conn.execute(
                sa.select(api_tokens)
                .where(api_tokens.c.user_id == user.id)
                .order_by(api_tokens.c.created_at.desc())
            ).all()
        return [
            TokenInfo(
                bytes(r.token_hash).hex()[:16],
                str(r.name),
                int(r.created_at),
                None if r.expires_at is None else int(r.expires_at),
                bool(r.revoked),
            )
            for r in rows
        ]

    def revoke_token_id(self, user: User, token_id: str) -> None:
        """Revoke one of the user's own tokens by its id (TOKEN_NOT_FOUND for anyone else's:
        whether another user's token exists is not theirs to learn)."""
        with self.engine.begin() as conn:
            hashes = conn.execute(
                sa.select(api_tokens.c.token_hash).where(api_tokens.c.user_id == user.id)
            ).scalars()
            found = [h for h in hashes if len(token_id) == 16 and bytes(h).hex()[:16] == token_id]
            if not found:
                raise errors.TokenNotFoundError(
                    f"you have no API token {token_id!r}", f"您没有 API 令牌 {token_id!r}"
                )
            conn.execute(
                api_tokens.update().where(api_tokens.c.token_hash == found[0]).values(revoked=True)
            )
            auditlog.append(
                conn, f"user:{user.id}", "token.revoke", f"user:{user.id}", {"token": token_id}
            )

    # -- web sessions ---------------------------------------------------------------------------

    def open_session(self, user: User, ttl_s: int) -> str:
        """A new server-side session for a web login; the cookie carries the returned id and
        the database its hash, so ending the session here ends it for every copy of the
        cookie."""
        sid = secrets.token_urlsafe(32)
        now = _now_us()
        with self.engine.begin() as conn:
            conn.execute(
                web_sessions.insert().values(
                    sid_hash=_token_hash(sid),
                    user_id=user.id,
                    created_at=now,
                    expires_at=now + ttl_s * 1_000_000,
                )
            )
        return sid

    def session_user(self, sid: str) -> User:
        """The user of a live session (AuthenticationError once it ended or expired, or the
        user was disabled)."""
        with reading(self.engine) as conn:
            row = conn.execute(
                sa.select(users)
                .join_from(web_sessions, users, users.c.id == web_sessions.c.user_id)
                .where(
                    web_sessions.c.sid_hash == _token_hash(sid),
                    web_sessions.c.expires_at > _now_us(),
                )
            ).first()
        if row is None or row.disabled:
            raise errors.AuthenticationError("the session has ended", "会话已结束")
        return _user(row)

    def end_session(self, sid: str) -> None:
        """Log out: the session is gone on the server (and expired ones with it)."""
        with self.engine.begin() as conn:
            conn.execute(
                web_sessions.delete().where(
                    (web_sessions.c.sid_hash == _token_hash(sid))
                    | (web_sessions.c.expires_at <= _now_us())
                )
            )

    # -- onboarding -----------------------------------------------------------------------------

    def add_user(
        self, username: str, role: Role, owner: str | None, password: str, actor: str = "system"
    ) -> User:
        """Onboard a user (the operator's `carbonbook user add`): a person's owner is
        `person:USERNAME`; other roles act for the ledger owner given, plain `kind[:name]`
        text; partners are onboarded with their scope by `register_partner` instead."""
        if role is Role.PARTNER:
            raise errors.BadUserInputError(
                "partners are onboarded with `carbonbook partner add` (they need a scope)",
                "合作平台须以 `carbonbook partner add` 接入（须设定范围）",
                field="role",
            )
        if role is Role.PERSON:
            if owner not in (None, f"person:{username}"):
                raise errors.BadUserInputError(
                    f"a person's owner is person:{username}",
                    f"个人用户的账户主体须为 person:{username}",
                    field="owner",
                )
            owner = f"person:{username}"
        if owner is None or not OWNER_RE.match(owner):
            raise errors.BadUserInputError(
                "--owner is the ledger owner the user acts for, as kind or kind:name "
                "(e.g. ent:steel, member:broker, regulator)",
                "--owner 为该用户代表的账户主体，形如 kind 或 kind:name（如 ent:steel）",
                field="owner",
            )
        return self.register(username, password, role, owner=owner, actor=actor)

    def disable(self, username: str, actor: str = "system") -> User:
        """Disable a user: they cannot log in, their sessions end and their tokens are revoked
        (USER_NOT_FOUND for an unknown name)."""
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(users).where(users.c.username == username)).first()
            if row is None:
                raise errors.UserNotFoundError(f"no user {username!r}", f"用户 {username!r} 不存在")
            conn.execute(users.update().where(users.c.id == row.id).values(disabled=True))
            conn.execute(
                api_tokens.update().where(api_tokens.c.user_id == row.id).values(revoked=True)
            )
            conn.execute(web_sessions.delete().where(web_sessions.c.user_id == row.id))
            auditlog.append(conn, actor, "user.disable", f"user:{row.id}", {})
        return _user(row)

    def set_role(self, username: str, role: Role, actor: str = "system") -> User:
        """Change a user's role, audited with the old and new role; their sessions end so the
        new role applies from the next login (tokens read the role on every request)."""
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(users).where(users.c.username == username)).first()
            if row is None:
                raise errors.UserNotFoundError(f"no user {username!r}", f"用户 {username!r} 不存在")
            conn.execute(users.update().where(users.c.id == row.id).values(role=role.value))
            conn.execute(web_sessions.delete().where(web_sessions.c.user_id == row.id))
            auditlog.append(
                conn, actor, "user.role", f"user:{row.id}", {"from": row.role, "to": role.value}
            )
        return replace(_user(row), role=role)

    # -- partner platforms ----------------------------------------------------------------------

    def register_partner(
        self,
        code: str,
        name: str,
        rate_limit_per_minute: int = 600,
        actor: str = "system",
        password: str | None = None,
        *,
        methodology: str | None = None,
        behaviours: tuple[str, ...] = (),
        evidence: tuple[str, ...] = ("operator",),
    ) -> tuple[Partner, str]:
        """Register a partner platform with its own user and its scope (the one methodology
        ID@VERSION, behaviours and evidence tiers it may claim); returns it and its HMAC
        secret, shown once."""
        _check_partner(code, name, methodology, (*behaviours, *evidence))
        user = self.register(
            f"partner-{code}",
            password or secrets.token_urlsafe(24),
            Role.PARTNER,
            display_name=name,
            owner=f"partner:{code}",
            actor=actor,
        )
        key_id = f"pk_{code}_{secrets.token_hex(4)}"
        secret = secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            conn.execute(
                partner_platforms.insert().values(
                    code=code,
                    name=name,
                    user_id=user.id,
                    key_id=key_id,
                    hmac_secret=secret,
                    rate_limit_per_minute=rate_limit_per_minute,
                    created_at=_now_us(),
                    methodology=methodology,
                    behaviours=json.dumps(sorted(set(behaviours))) if methodology else None,
                    evidence=json.dumps(sorted(set(evidence))) if methodology else None,
                )
            )
            auditlog.append(
                conn,
                actor,
                "partner.register",
                f"partner:{code}",
                {
                    "key_id": key_id,
                    "methodology": methodology,
                    "behaviours": sorted(set(behaviours)),
                    "evidence": sorted(set(evidence)),
                },
            )
        return self._known_partner(code), secret

    def rotate_partner(self, code: str, actor: str = "system") -> tuple[Partner, str]:
        """A new key id and HMAC secret for a partner (the old ones stop working at once)."""
        key_id = f"pk_{code}_{secrets.token_hex(4)}"
        secret = secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            changed = conn.execute(
                partner_platforms.update()
                .where(partner_platforms.c.code == code)
                .values(key_id=key_id, hmac_secret=secret)
            ).rowcount
            if not changed:
                raise errors.UnknownPartnerError(
                    f"no partner platform {code!r}", f"没有合作平台 {code!r}", partner=code
                )
            auditlog.append(conn, actor, "partner.rotate", f"partner:{code}", {"key_id": key_id})
        return self._known_partner(code), secret

    def _known_partner(self, code: str) -> Partner:
        found = self.partner(code)
        if found is None:
            raise errors.UnknownPartnerError(
                f"no partner platform {code!r}", f"没有合作平台 {code!r}", partner=code
            )
        return found

    def partners(self) -> list[Partner]:
        """Every partner platform with its scope, by code."""
        with reading(self.engine) as conn:
            rows = conn.execute(sa.select(partner_platforms).order_by(partner_platforms.c.code))
            return [_partner(row) for row in rows]

    def partner(self, code: str) -> Partner | None:
        with reading(self.engine) as conn:
            row = conn.execute(
                sa.select(partner_platforms).where(partner_platforms.c.code == code)
            ).first()
        if row is None:
            return None
        return _partner(row)

    def verify_signed_request(
        self,
        key_id: str,
        timestamp: str,
        nonce: str,
        signature: str,
        method: str,
        path: str,
        body: bytes,
    ) -> Partner:
        """Check a partner's HMAC signature, its freshness, and that its nonce is new.

        A replayed request (same key and nonce) is refused even with a valid signature.
        """
        with reading(self.engine) as conn:
            row = conn.execute(
                sa.select(partner_platforms).where(partner_platforms.c.key_id == key_id)
            ).first()
        if row is None:
            raise errors.BadSignatureError("unknown partner key", "未知的合作平台密钥")
        try:
            sent_at = int(timestamp)
        except ValueError:
            raise errors.StaleRequestError(
                "the timestamp is not an integer of seconds", "时间戳必须是整数秒"
            ) from None
        if abs(time.time() - sent_at) > SIGNATURE_WINDOW_S:
            raise errors.StaleRequestError(
                f"the request is more than {SIGNATURE_WINDOW_S} s old or ahead",
                f"请求时间与服务器相差超过 {SIGNATURE_WINDOW_S} 秒",
            )
        if not (8 <= len(nonce) <= 80):
            raise errors.BadSignatureError(
                "the nonce must have 8-80 characters", "nonce 长度须为 8-80"
            )
        expected = sign(row.hmac_secret, method, path, timestamp, nonce, body)
        if not hmac.compare_digest(expected, signature.lower()):
            raise errors.BadSignatureError("the signature does not match", "签名不匹配")
        now = _now_us()
        with self.engine.begin() as conn:
            conn.execute(
                request_nonces.delete().where(
                    request_nonces.c.seen_at < now - 2 * SIGNATURE_WINDOW_S * 1_000_000
                )
            )
            seen = conn.execute(
                sa.select(request_nonces.c.nonce).where(
                    request_nonces.c.key_id == key_id, request_nonces.c.nonce == nonce
                )
            ).first()
            if seen is not None:
                raise errors.ReplayedRequestError(
                    "this nonce was used before: a replayed request", "该 nonce 已使用过：重放请求"
                )
            try:
                conn.execute(
                    request_nonces.insert().values(key_id=key_id, nonce=nonce, seen_at=now)
                )
            except sa.exc.IntegrityError:
                raise errors.ReplayedRequestError(
                    "this nonce was used before: a replayed request", "该 nonce 已使用过：重放请求"
                ) from None
        return _partner(row)


def _check_partner(code: str, name: str, methodology: str | None, names: tuple[str, ...]) -> None:
    """A partner's code, name and scope are plain text of bounded length (no control
    characters): they become ledger owners, key ids and log lines."""
    bad = (
        not PARTNER_CODE_RE.match(code)
        or not name.strip()
        or len(name) > 200
        or any(ord(c) < 32 or ord(c) == 127 for c in name)
        or (methodology is not None and not SCOPE_NAME_RE.match(methodology))
        or not all(SCOPE_NAME_RE.match(n) for n in names)
    )
    if bad:
        raise errors.BadUserInputError(
            "a partner code is 1-60 of a-z, 0-9, '-' and '_'; the name 1-200 characters "
            "without control characters; behaviours, evidence and the methodology plain codes",
            "合作平台代码须为 1-60 个 a-z、0-9、'-'、'_'；名称 1-200 个字符且不含控制字符；"
            "行为、证据等级与方法学须为普通代码",
        )


def _user(row: sa.Row[tuple[object, ...]]) -> User:
    m = row._mapping  # noqa: SLF001 - SQLAlchemy's public mapping view of a row
    return User(
        int(str(m["id"])),
        str(m["username"]),
        str(m["display_name"]),
        Role(m["role"]),
        str(m["locale"]),
        str(m["owner"]),
    )
