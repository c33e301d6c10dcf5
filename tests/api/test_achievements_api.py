"""Levels, badges and leaderboards over HTTP: a person sees what their green acts earned, joins a
city, organisation and team, and compares grams there; nobody's handle is ever shown."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from carbonbook.identity.model import Role
from carbonbook.methodology.registry import get
from carbonbook.personal.service import Personal
from tests.api.conftest import PASSWORD, World

PHONE = "13800138000"
SHANGHAI = ZoneInfo("Asia/Shanghai")


def ingest(engine: sa.Engine, *rides: tuple[str, str]) -> None:
    """(person, km) shared-bike rides a minute ago (in this Shanghai month: the "month" board
    must see them), 250 g/km under bj-green-life@2023."""
    now = datetime.now(SHANGHAI)
    at = max(now - timedelta(minutes=1), now.replace(day=1, hour=0, minute=0, second=0)).isoformat()
    lines = [
        json.dumps(
            {
                "platform": "bike-a",
                "event_id": f"{person}-{n}",
                "person": person,
                "behaviour": "shared_bike",
                "quantity": km,
                "unit": "km",
                "occurred_at": at,
            }
        )
        for n, (person, km) in enumerate(rides)
    ]
    report = Personal(engine).ingest_lines(lines, get("bj-green-life@2023"))
    assert report.accepted == len(rides), report.rejected


def join(world: World, person: str, **groups: str | None) -> None:
    r = world.client.put("/api/v1/me/groups", json=groups, headers=world.token(person))
    assert r.status_code == 200, r.text


def board(world: World, person: str, **params: str | int) -> dict:
    r = world.client.get("/api/v1/leaderboards", params=params, headers=world.token(person))
    assert r.status_code == 200, r.text
    return r.json()


def test_a_person_sees_level_badges_and_streak_after_ingesting_events(world: World, engine):
    chen = world.token("chen")
    before = world.client.get("/api/v1/me/achievements", headers=chen).json()
    assert before["level"]["id"] == "sprout"
    assert before["new_badges"] == []
    assert before["streak"] == {"current": 0, "longest": 0}
    ingest(engine, ("chen", "5"))  # 1250 g, 13 points
    found = world.client.get("/api/v1/me/achievements", headers=chen).json()
    assert found["total_grams"] == "1250.00"
    assert found["level"]["name_zh"] == "绿苗"
    assert found["next_level"]["id"] == "sapling"
    assert found["to_next_grams"] == "8750.00"
    assert found["percent"] == 2  # 250 of 9000 g, floor
    assert found["streak"] == {"current": 1, "longest": 1}
    assert found["points_earned"] == 13
    assert sorted(found["new_badges"]) == ["first-green-act", "first-ride", "one-kilogram"]
    earned = {b["id"] for b in found["badges"] if b["earned"]}
    assert earned == set(found["new_badges"])
    locked = {b["id"]: b for b in found["badges"] if not b["earned"]}
    assert locked["cyclist-10kg"]["progress"] == 1_250_000
    assert locked["cyclist-10kg"]["target"] == 10_000_000
    again = world.client.get("/api/v1/me/achievements", headers=chen).json()
    assert again["new_badges"] == []  # awarded once
    assert {b["id"] for b in again["badges"] if b["earned"]} == earned


def test_only_a_person_has_achievements(world: World):
    r = world.client.get("/api/v1/me/achievements", headers=world.token("admin"))
    assert r.status_code == 403
    assert r.json()["code"] == "FORBIDDEN"
    assert world.client.get("/api/v1/me/achievements").status_code == 401


def test_the_leaderboard_orders_by_grams_within_the_city_ties_by_handle(world: World, engine):
    for name in ("li", PHONE, "wang"):
        world.identity.register(name, PASSWORD, Role.PERSON, owner=f"person:{name}")
    ingest(
        engine,
        ("chen", "2"),  # 500 g
        ("li", "2"),  # 500 g: a tie with chen
        ("xu", "4"),  # 1000 g
        (PHONE, "1"),  # 250 g
        ("wang", "20"),  # 5000 g, but in another city
    )
    join(world, "chen", city="北京", display_name="小陈")
    join(world, "li", city="北京")
    join(world, "xu", city="北京")
    join(world, PHONE, city="北京")
    join(world, "wang", city="上海")
    found = board(world, "chen", scope="city", period="month")
    assert found["group"] == ["北京"]
    assert [(e["rank"], e["name"], e["grams"]) for e in found["entries"]] == [
        (1, "x*", "1000.00"),
        (2, "小陈", "500.00"),  # chen before li: equal grams, ordered by handle
        (2, "l*", "500.00"),
        (4, "1***0", "250.00"),
    ]
    assert [e["me"] for e in found["entries"]] == [False, True, False, False]
    assert found["me"] == {"rank": 2, "name": "小陈", "grams": "500.00", "me": True}
    text = json.dumps(found, ensure_ascii=False)
    assert PHONE not in text
    assert "wang" not in text
    assert "chen" not in text
    top = board(world, "chen", scope="city", period="all", limit=1)
    assert [e["name"] for e in top["entries"]] == ["x*"]
    assert top["me"]["rank"] == 2  # outside the top 1, still told where one stands
    shanghai = board(world, "wang", scope="city", period="all")
    assert [e["grams"] for e in shanghai["entries"]] == ["5000.00"]


def test_teams_are_within_their_organisation(world: World, engine):
    world.identity.register("li", PASSWORD, Role.PERSON, owner="person:li")
    ingest(engine, ("chen", "2"), ("xu", "4"), ("li", "8"))
    join(world, "chen", organisation="首钢", team="骑行队")
    join(world, "xu", organisation="首钢", team="步行队")
    join(world, "li", organisation="京东", team="骑行队")  # same team name, other organisation
    team = board(world, "chen", scope="team", period="all")
    assert team["group"] == ["首钢", "骑行队"]
    assert [e["grams"] for e in team["entries"]] == ["500.00"]
    organisation = board(world, "chen", scope="organisation", period="all")
    assert [e["grams"] for e in organisation["entries"]] == ["1000.00", "500.00"]


def test_bad_scope_or_period_is_a_422_with_a_code(world: World):
    chen = world.token("chen")
    for params in ({"scope": "street"}, {"scope": "city", "period": "year"}, {}):
        r = world.client.get("/api/v1/leaderboards", params=params, headers=chen)
        assert r.status_code == 422, params
        assert r.json()["code"] == "VALIDATION_FAILED"
        assert r.json()["message_zh"]
    r = world.client.get(
        "/api/v1/leaderboards", params={"scope": "city", "limit": 1000}, headers=chen
    )
    assert r.status_code == 422


def test_a_leaderboard_needs_a_group(world: World):
    r = world.client.get(
        "/api/v1/leaderboards", params={"scope": "team"}, headers=world.token("chen")
    )
    assert r.status_code == 409
    assert r.json()["code"] == "NO_GROUP"
    assert r.json()["message_zh"] != r.json()["message"]


def test_groups_are_checked_and_a_display_name_may_not_be_a_contact(world: World):
    chen = world.token("chen")
    for body in (
        {"display_name": "138 0013 8000"},
        {"display_name": "chen@example.com"},
        {"team": "骑行队"},  # a team without its organisation
    ):
        r = world.client.put("/api/v1/me/groups", json=body, headers=chen)
        assert r.status_code == 422, body
        assert r.json()["code"] == "BAD_GROUP"
    r = world.client.put("/api/v1/me/groups", json={"city": "x" * 61}, headers=chen)
    assert r.status_code == 422
    join(world, "chen", city=" 北京 ", display_name="小陈")
    assert world.client.get("/api/v1/me/groups", headers=chen).json() == {
        "display_name": "小陈",
        "city": "北京",
        "organisation": None,
        "team": None,
    }
    join(world, "chen", city="")  # empty clears
    assert world.client.get("/api/v1/me/groups", headers=chen).json()["city"] is None


def test_an_administrator_sets_groups_and_reads_any_board(world: World, engine):
    ingest(engine, ("chen", "2"))
    admin = world.token("admin")
    r = world.client.put("/api/v1/people/chen/groups", json={"city": "北京"}, headers=admin)
    assert r.status_code == 200, r.text
    r = world.client.put("/api/v1/people/nobody/groups", json={"city": "北京"}, headers=admin)
    assert r.status_code == 404
    assert r.json()["code"] == "UNKNOWN_PERSON"
    r = world.client.put(
        "/api/v1/people/chen/groups", json={"city": "上海"}, headers=world.token("xu")
    )
    assert r.status_code == 403
    found = board(world, "admin", scope="city", period="all", city="北京")
    assert [e["grams"] for e in found["entries"]] == ["500.00"]
    assert found["me"] is None
    r = world.client.get(
        "/api/v1/leaderboards", params={"scope": "city", "city": "北京"}, headers=world.token("xu")
    )
    assert r.status_code == 403  # a person sees their own groups' boards only
    r = world.client.get(
        "/api/v1/leaderboards", params={"scope": "team", "team": "骑行队"}, headers=admin
    )
    assert r.status_code == 422
    assert r.json()["code"] == "BAD_LEADERBOARD"


def test_control_characters_in_names_are_refused_not_a_server_error(world: World):
    admin = world.token("admin")
    r = world.client.get(
        "/api/v1/leaderboards", params={"scope": "city", "city": "北\x00京"}, headers=admin
    )
    assert r.status_code == 422
    assert r.json()["code"] == "BAD_LEADERBOARD"
    r = world.client.put("/api/v1/people/ch%00en/groups", json={"city": "北京"}, headers=admin)
    assert r.status_code == 404
    r = world.client.put(
        "/api/v1/me/groups", json={"city": "北\u0000京"}, headers=world.token("chen")
    )
    assert r.status_code == 422
    assert r.json()["code"] == "BAD_GROUP"
