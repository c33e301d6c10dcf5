"""Levels, badges (勋章), streaks, group membership and leaderboards of personal accounts.

Reading my achievements also awards the badges newly earned (idempotent), so no ingestion path
needs to know about badges. Leaderboards never show a handle: a display name or a masked one.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from carbonbook.api.deps import Ctx, CurrentUser, require
from carbonbook.api.errors import ApiError
from carbonbook.identity.model import Permission, Role, User
from carbonbook.numbers import mg_to_grams_text
from carbonbook.personal.achievements import (
    Achievement,
    Achievements,
    BadLeaderboardError,
    Entry,
    Groups,
    Leaderboard,
)
from carbonbook.personal.gamification import Level

router = APIRouter(tags=["achievements"])

Scope = Literal["city", "organisation", "team"]
Period = Literal["month", "all"]


class LevelOut(BaseModel):
    id: str
    name_zh: str
    name_en: str
    threshold_grams: str


class StreakOut(BaseModel):
    current: int = Field(description="consecutive active days ending today (or yesterday)")
    longest: int


class BadgeOut(BaseModel):
    id: str
    kind: str
    behaviour: str | None
    name_zh: str
    name_en: str
    description_zh: str
    description_en: str
    target: int = Field(description="milligrams (total_reduction), days, points, or 1")
    progress: int = Field(description="the same unit as target, capped at it")
    earned: bool
    earned_day: str | None = Field(description="the Asia/Shanghai day the rule first held")
    new: bool = Field(description="awarded by this request")


class AchievementsOut(BaseModel):
    total_grams: str
    level: LevelOut
    next_level: LevelOut | None
    to_next_grams: str
    percent: int = Field(ge=0, le=100)
    streak: StreakOut
    points_earned: int
    badges: list[BadgeOut]
    new_badges: list[str]
    retired_badges: list[str] = Field(description="awarded under rules that no longer have them")
    rules_version: str


class GroupsIn(BaseModel):
    display_name: str | None = Field(default=None, max_length=40)
    city: str | None = Field(default=None, max_length=60)
    organisation: str | None = Field(default=None, max_length=120)
    team: str | None = Field(default=None, max_length=120)


class GroupsOut(GroupsIn):
    pass


class EntryOut(BaseModel):
    rank: int
    name: str = Field(description="the display name, else a masked handle")
    grams: str
    me: bool


class LeaderboardOut(BaseModel):
    scope: str
    period: str
    group: list[str]
    since: str | None
    until: str
    entries: list[EntryOut]
    me: EntryOut | None


def _level(level: Level) -> LevelOut:
    return LevelOut(
        id=level.id,
        name_zh=level.name_zh,
        name_en=level.name_en,
        threshold_grams=mg_to_grams_text(level.threshold_mg),
    )


def _achievements(found: Achievement) -> AchievementsOut:
    standing = found.standing
    return AchievementsOut(
        total_grams=mg_to_grams_text(standing.total_mg),
        level=_level(standing.level),
        next_level=None if standing.next_level is None else _level(standing.next_level),
        to_next_grams=mg_to_grams_text(standing.to_next_mg),
        percent=standing.percent,
        streak=StreakOut(current=found.streak.current, longest=found.streak.longest),
        points_earned=found.points_earned,
        badges=[
            BadgeOut(
                id=s.badge.id,
                kind=s.badge.kind,
                behaviour=s.badge.behaviour,
                name_zh=s.badge.name_zh,
                name_en=s.badge.name_en,
                description_zh=s.badge.description_zh,
                description_en=s.badge.description_en,
                target=s.badge.target,
                progress=s.progress,
                earned=s.earned,
                earned_day=s.earned_day,
                new=s.new,
            )
            for s in found.badges
        ],
        new_badges=found.new_badges,
        retired_badges=list(found.retired),
        rules_version=found.rules_version,
    )


def _entry(entry: Entry) -> EntryOut:
    return EntryOut(rank=entry.rank, name=entry.name, grams=mg_to_grams_text(entry.mg), me=entry.me)


def _board(board: Leaderboard) -> LeaderboardOut:
    return LeaderboardOut(
        scope=board.scope,
        period=board.period,
        group=list(board.group),
        since=board.since,
        until=board.until,
        entries=[_entry(e) for e in board.entries],
        me=None if board.me is None else _entry(board.me),
    )


def _groups(groups: Groups) -> GroupsOut:
    return GroupsOut(**groups.to_document())


def _person(user: User) -> None:
    if user.role is not Role.PERSON:
        raise ApiError(
            403,
            "FORBIDDEN",
            "only a personal account has levels and badges",
            "只有个人账户有等级和勋章",
        )


@router.get(
    "/me/achievements",
    response_model=AchievementsOut,
    summary="My level, badges (勋章) and streak; badges newly earned are awarded now",
)
def my_achievements(user: CurrentUser, ctx: Ctx) -> AchievementsOut:
    _person(user)
    return _achievements(Achievements(ctx.engine).of(user.username))


@router.get("/me/groups", response_model=GroupsOut, summary="My city, organisation and team")
def my_groups(user: CurrentUser, ctx: Ctx) -> GroupsOut:
    _person(user)
    return _groups(Achievements(ctx.engine).groups_of(user.username))


@router.put(
    "/me/groups",
    response_model=GroupsOut,
    summary="Set my display name, city, organisation and team (empty clears one)",
)
def put_my_groups(body: GroupsIn, user: CurrentUser, ctx: Ctx) -> GroupsOut:
    _person(user)
    found = Achievements(ctx.engine).set_groups(
        user.username, actor=f"user:{user.id}", **body.model_dump()
    )
    return _groups(found)


@router.put(
    "/people/{handle}/groups",
    response_model=GroupsOut,
    summary="Set a person's groups (administrators)",
)
def put_groups(handle: str, body: GroupsIn, user: CurrentUser, ctx: Ctx) -> GroupsOut:
    require(user, Permission.MANAGE_USERS)
    found = Achievements(ctx.engine).set_groups(
        handle, actor=f"user:{user.id}", must_exist=True, **body.model_dump()
    )
    return _groups(found)


@router.get(
    "/leaderboards",
    response_model=LeaderboardOut,
    summary="Top people by grams avoided this month or all time, in a city, organisation or "
    "team: a person's own, or any named one (administrators)",
)
def leaderboard(
    user: CurrentUser,
    ctx: Ctx,
    scope: Scope,
    period: Period = "month",
    limit: Annotated[int | None, Query(ge=1, le=100)] = None,
    city: Annotated[str | None, Query(max_length=60)] = None,
    organisation: Annotated[str | None, Query(max_length=120)] = None,
    team: Annotated[str | None, Query(max_length=120)] = None,
) -> LeaderboardOut:
    service = Achievements(ctx.engine)
    if city is None and organisation is None and team is None:
        _person(user)
        return _board(service.my_leaderboard(user.username, scope, period, limit=limit))
    require(user, Permission.READ_ALL_ACCOUNTS)
    group = Groups("", None, city, organisation, team).value(scope)
    if group is None:
        raise BadLeaderboardError(
            f"name the {scope} (a team with its organisation)",
            "请指明要查看的城市、单位或团队（团队须同时指明单位）",
        )
    return _board(service.leaderboard(scope, period, group, limit=limit))
