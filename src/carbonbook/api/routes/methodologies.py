"""Methodology versions over HTTP: every version in use (public), one version's behaviours,
factors and sources (public), and publication of a new version by a regulator (audited)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from carbonbook.api.deps import Ctx, CurrentUser, require
from carbonbook.identity.model import Permission
from carbonbook.methodology.model import Methodology
from carbonbook.methodology.registry import all_methodologies, default_registry
from carbonbook.personal.publishing import MAX_BYTES, publish

router = APIRouter(tags=["methodologies"])
Ref = Annotated[str, Path(min_length=3, max_length=100, examples=["bj-green-life@2023"])]


class PublishIn(BaseModel):
    toml: str = Field(min_length=1, max_length=MAX_BYTES, description="the version, as a TOML file")


def _summary(m: Methodology) -> dict[str, Any]:
    return {
        "ref": m.ref,
        "id": m.id,
        "version": m.version,
        "title": m.title,
        "status": m.status,
        "effective_from": m.effective_from.isoformat(),
        "effective_until": None if m.effective_until is None else m.effective_until.isoformat(),
        "source": m.source,
    }


@router.get("/methodologies", summary="Every methodology version in use (public)")
def versions() -> list[dict[str, Any]]:
    return [_summary(m) for m in all_methodologies().values()]


@router.get("/methodologies/{ref}", summary="One version: behaviours, factors, sources")
def version(ref: Ref) -> dict[str, Any]:
    m = default_registry().get(ref)
    return {
        **_summary(m),
        "behaviours": {
            code: {
                "unit": b.unit,
                "factor_g_per_unit": None
                if b.factor_g_per_unit is None
                else str(b.factor_g_per_unit),
                "factor_status": b.factor_status,
                "factor_source": b.factor_source,
                "baseline": b.baseline,
            }
            for code, b in m.behaviours.items()
        },
    }


@router.post("/methodologies", status_code=201, summary="Publish a new version (regulator)")
def publish_version(body: PublishIn, user: CurrentUser, ctx: Ctx) -> dict[str, Any]:
    """Validated like the shipped files; immutable once published; audited."""
    require(user, Permission.REGULATE_REGISTRY)
    return _summary(publish(ctx.engine, body.toml, by=user.username))
