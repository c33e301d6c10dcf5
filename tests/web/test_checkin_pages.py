"""The check-in pages: people upload, reviewers review; a refused upload stores nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from carbonbook.db.engine import make_engine
from carbonbook.identity.model import Role
from carbonbook.identity.service import Identity
from carbonbook.personal.checkins import Checkins
from carbonbook.web.app import create_app
from tests.personal.test_checkins import photo
from tests.web.test_pages import PASSWORD, csrf_of, log_in


@pytest.fixture
def client(sqlite_url: str) -> Iterator[TestClient]:
    engine = make_engine(sqlite_url)
    identity = Identity(engine)
    identity.register("chen", PASSWORD, Role.PERSON, owner="person:chen")
    identity.register("shen", PASSWORD, Role.VERIFIER, owner="verifier:shen")
    identity.register("steel", PASSWORD, Role.ENTERPRISE, owner="entity:steel")
    with TestClient(create_app(engine, secret_key="test-secret")) as c:
        c.engine = engine  # type: ignore[attr-defined]
        yield c
    engine.dispose()


def test_who_sees_what(client: TestClient):
    log_in(client, "steel")
    assert client.get("/checkins").status_code == 403
    assert client.get("/review").status_code == 403
    client.cookies.clear()
    log_in(client, "chen")
    assert client.get("/review").status_code == 403


def test_upload_reject_with_a_reason(client: TestClient):
    log_in(client, "chen")
    token = csrf_of(client.get("/checkins").text)
    big = client.post(
        "/checkins",
        data={"csrf": token, "behaviour": "metro_checkin"},
        files={"photo": ("x.jpg", b"\xff" * (5 * 1024 * 1024 + 1), "image/jpeg")},
    )
    assert big.status_code == 413
    assert 'data-code="PHOTO_TOO_LARGE"' in big.text
    assert Checkins(client.engine).of("chen") == []  # type: ignore[attr-defined]
    ok = client.post(
        "/checkins",
        data={"csrf": token, "behaviour": "metro_checkin"},
        files={"photo": ("m.jpg", photo(3), "image/jpeg")},
        follow_redirects=False,
    )
    assert ok.status_code == 303
    client.cookies.clear()
    log_in(client, "shen")
    queue = client.get("/review").text
    (checkin,) = Checkins(client.engine).queue()  # type: ignore[attr-defined]
    client.post(f"/review/{checkin.id}/reject", data={"csrf": csrf_of(queue), "reason": "照片模糊"})
    client.cookies.clear()
    log_in(client, "chen")
    mine = client.get("/checkins").text
    assert 'data-status="rejected"' in mine
    assert "照片模糊" in mine


def test_an_approval_past_the_cap_tells_the_reviewer_and_the_person(client: TestClient):
    from carbonbook.methodology.registry import get

    service = Checkins(client.engine)  # type: ignore[attr-defined]
    ali = get("ali-88@2023")
    done = [service.submit("chen", "metro_checkin", photo(200 + n), ali) for n in range(5)]
    for checkin in done[:4]:
        service.approve(checkin.id, "reviewer", ali)
    log_in(client, "shen")
    queue = client.get("/review").text
    page = client.post(f"/review/{done[4].id}/approve", data={"csrf": csrf_of(queue)})
    assert page.status_code == 200
    assert 'data-code="DAILY_CAP"' in page.text
    client.cookies.clear()
    log_in(client, "chen")
    assert 'data-status="not_credited"' in client.get("/checkins").text
