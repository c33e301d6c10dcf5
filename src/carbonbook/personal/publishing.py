"""Regulators publish methodology versions (方法学发布) after release: a TOML document in the
shipped format, validated like the shipped files, stored with its hash and an audit entry,
and added to the registry in use at once (and at every start-up). A version, once published,
is immutable: its `ID@VERSION` cannot be published again, and a change is a new version that
supersedes it from its effective date."""

from __future__ import annotations

import hashlib
import tomllib
from typing import TYPE_CHECKING

import sqlalchemy as sa

from carbonbook import auditlog
from carbonbook.db.schema import methodology_versions
from carbonbook.errors import ConflictError, ValidationFailedError
from carbonbook.ledger.service import now_us
from carbonbook.methodology import errors as methodology_errors
from carbonbook.methodology.registry import add_published, all_methodologies, parse

if TYPE_CHECKING:
    from carbonbook.methodology.model import Methodology

MAX_BYTES = 200_000


class VersionExistsError(ConflictError):
    code = "VERSION_EXISTS"


class InvalidVersionError(ValidationFailedError):
    """A published document that breaks the format: the sender's fault, so 422 (a broken
    shipped file is the server's, 500)."""

    code = "INVALID_METHODOLOGY"


def _refused(exc: methodology_errors.InvalidMethodologyError) -> InvalidVersionError:
    return InvalidVersionError(exc.message, exc.message_zh, **exc.details)


def _parse(text: str) -> Methodology:
    if len(text.encode()) > MAX_BYTES:
        raise ValidationFailedError(
            f"a methodology document is at most {MAX_BYTES:,} bytes", "方法学文件过大"
        )
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValidationFailedError(f"not TOML: {exc}", f"不是有效的 TOML：{exc}") from None
    try:
        return parse(data, "published")
    except methodology_errors.InvalidMethodologyError as exc:
        raise _refused(exc) from None


def publish(engine: sa.Engine, text: str, *, by: str) -> Methodology:
    """Validate, store and put into use one new version. Refused, changing nothing, when the
    document is invalid or its `ID@VERSION` exists (shipped or published)."""
    methodology = _parse(text)
    if methodology.ref in all_methodologies():
        raise VersionExistsError(
            f"{methodology.ref} exists and is immutable: publish a new version",
            f"{methodology.ref} 已存在且不可修改，请发布新版本",
        )
    with engine.begin() as conn:
        conn.execute(
            methodology_versions.insert().values(
                ref=methodology.ref,
                source_toml=text,
                sha256=hashlib.sha256(text.encode()).hexdigest(),
                published_by=by,
                published_at=now_us(),
            )
        )
        auditlog.append(
            conn,
            by,
            "methodology.publish",
            methodology.ref,
            {"sha256": hashlib.sha256(text.encode()).hexdigest()},
        )
        # Inside the transaction: a clash with another version (same effective day) raises
        # InvalidMethodologyError and rolls the stored row back.
        try:
            add_published([methodology])
        except methodology_errors.InvalidMethodologyError as exc:
            raise _refused(exc) from None
    return methodology


def load_published(engine: sa.Engine) -> int:
    """Put every stored published version into use (at start-up); returns how many."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(methodology_versions.c.source_toml).order_by(
                methodology_versions.c.published_at
            )
        ).scalars()
        versions = [_parse(text) for text in rows]
    if versions:
        add_published(versions)
    return len(versions)
