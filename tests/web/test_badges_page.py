"""The badges page (勋章): level and progress, badges earned and locked, streaks, and the
leaderboard of the groups a person joined; Chinese by default, English by switch."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from carbonbook.db.engine import make_engine
from carbonbook.identity.model import Role
from carbonbook.identity.service import Identity
from carbonbook.ledger import Ledger
from carbonbook.methodology.registry import get
from carbonbook.personal.achievements import Achievements
from carbonbook.personal.service import Personal
from carbonbook.web.app import create_app
from tests.web.test_pages import PASSWORD, csrf_of, log_in

SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass
class Site:
    client: TestClient
    engine: sa.Engine


def ride(n: int, person: str, km: str, at: datetime) -> str:
    return json.dumps(
        {
            "platform": "bike-a",
            "event_id": f"e{n}",
            "person": person,
            "behaviour": "shared_bike",
            "quantity": km,
            "unit": "km",
            "occurred_at": at.isoformat(),
        }
    )


@pytest.fixture
def site(sqlite_url: str) -> Iterator[Site]:
    """Chen rode 5 km today and yesterday (2.5 kg); Xu rode 2 km today; both live in 北京."""
    engine = make_engine(sqlite_url)
    Ledger(engine).ensure_assets()
    identity = Identity(engine)
    identity.register("chen", PASSWORD, Role.PERSON, display_name="陈女士", owner="person:chen")
    identity.register("xu", PASSWORD, Role.PERSON, owner="person:xu")
    identity.register("admin", PASSWORD, Role.REGULATOR, owner="regulator")
    now = datetime.now(SHANGHAI)
    today = max(now - timedelta(seconds=30), now.replace(hour=0, minute=0, second=0))
    lines = [
        ride(1, "chen", "5", now - timedelta(days=1)),
        ride(2, "chen", "5", today),
        ride(3, "xu", "2", today),
    ]
    Personal(engine).ingest_lines(lines, get("bj-green-life@2023"))
    Achievements(engine).set_groups("xu", actor="test", city="北京", display_name="小徐")
    with TestClient(create_app(engine, secret_key="test-secret")) as client:
        yield Site(client, engine)
    engine.dispose()


def test_the_badges_page_shows_level_streak_and_badges_in_chinese_by_default(site: Site):
    log_in(site.client)
    response = site.client.get("/badges")
    assert response.status_code == 200
    html = response.text
    assert 'lang="zh-CN"' in html
    assert 'id="nav-badges"' in html
    assert re.search(r'id="level-name">绿苗<', html)  # 2500 g: past 1 kg
    assert re.search(r'id="total-grams">2,500\.00<', html)
    assert re.search(r'id="next-level">小树<', html)
    assert re.search(r'id="level-progress" max="100" value="16"', html)  # 1500 of 9000 g
    assert re.search(r'id="streak-current">2<', html)
    assert re.search(r'id="streak-longest">2<', html)
    assert 'id="new-badges"' in html
    earned = re.search(r'id="badges-earned">(.*?)</ul>', html, re.DOTALL).group(1)
    assert 'data-badge="first-ride"' in earned
    assert "第一次骑行" in earned
    locked = re.search(r'id="badges-locked">(.*?)</ul>', html, re.DOTALL).group(1)
    assert 'data-badge="streak-7"' in locked
    assert re.search(r'data-badge="streak-7">.*?2 / 7', locked, re.DOTALL)
    assert 'id="no-groups"' in html  # chen has joined no group yet
    again = site.client.get("/badges").text
    assert 'id="new-badges"' not in again  # the awards were written once


def test_the_page_in_english(site: Site):
    log_in(site.client)
    site.client.get("/lang/en")
    html = site.client.get("/badges").text
    assert 'lang="en"' in html
    assert re.search(r'id="level-name">Seedling<', html)
    assert "First ride" in html
    assert "Badges and levels" in html


def test_joining_a_city_shows_its_leaderboard_with_names_not_handles(site: Site):
    log_in(site.client)
    page = site.client.get("/badges").text
    form = {"csrf": csrf_of(page), "city": "北京", "display_name": "", "organisation": ""}
    done = site.client.post("/badges/groups", data=form)
    assert done.status_code == 200
    html = done.text
    board = re.search(r'data-scope="city">(.*?)</section>', html, re.DOTALL).group(1)
    rows = re.findall(
        r"<tr(?: class=\"me\" aria-current=\"true\")?><td class=\"num\">(\d+)</td><td>([^<]+)</td>",
        board,
    )
    assert rows == [("1", "c***n"), ("2", "小徐")]
    assert "北京" in board
    assert 'class="me"' in board
    month = site.client.get("/badges?period=all").text
    assert 'href="/badges?period=all" aria-current="true"' in month


def test_a_contact_as_display_name_is_refused_on_the_page(site: Site):
    log_in(site.client)
    page = site.client.get("/badges").text
    refused = site.client.post(
        "/badges/groups", data={"csrf": csrf_of(page), "display_name": "chen@example.com"}
    )
    assert refused.status_code == 422
    assert 'data-code="BAD_GROUP"' in refused.text
    forged = site.client.post("/badges/groups", data={"csrf": "nope", "city": "北京"})
    assert forged.status_code == 403


def test_only_a_logged_in_person_has_a_badges_page(site: Site):
    assert (
        site.client.get("/badges", follow_redirects=False).headers["location"].startswith("/login")
    )
    log_in(site.client, "admin")
    assert site.client.get("/badges").status_code == 403
