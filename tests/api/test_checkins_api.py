"""Check-ins over HTTP: a person uploads a photo, a verifier reviews it; refusals have codes."""

from __future__ import annotations

import io

from PIL import Image

from carbonbook.identity.model import Role
from tests.api.conftest import PASSWORD, World


def jpeg(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    image = Image.new("RGB", (200, 200), colour)
    image.paste((255, 255, 255), (20, 20, 120, 90))
    image.save(out, "JPEG")
    return out.getvalue()


def test_a_person_uploads_and_a_verifier_approves(world: World):
    world.identity.register("reviewer", PASSWORD, Role.VERIFIER, owner="verifier:demo")
    chen = world.token("chen")
    r = world.client.post(
        "/api/v1/me/checkins",
        data={"behaviour": "metro_checkin"},
        files={"photo": ("plate.jpg", jpeg((10, 120, 40)), "image/jpeg")},
        headers=chen,
    )
    assert r.status_code == 201, r.text
    checkin = r.json()["id"]
    assert world.client.get("/api/v1/review/checkins", headers=chen).status_code == 403
    reviewer = world.token("reviewer")
    queue = world.client.get("/api/v1/review/checkins", headers=reviewer).json()
    assert [c["id"] for c in queue] == [checkin]
    photo = world.client.get(f"/api/v1/review/checkins/{checkin}/photo", headers=reviewer)
    assert photo.headers["content-type"] == "image/jpeg"
    approved = world.client.post(f"/api/v1/review/checkins/{checkin}/approve", headers=reviewer)
    assert approved.status_code == 200, approved.text
    assert approved.json()["people"]["chen"]["grams"] == "200.00"


def test_a_file_that_is_not_a_photo_is_refused_with_a_code(world: World):
    r = world.client.post(
        "/api/v1/me/checkins",
        data={"behaviour": "metro_checkin"},
        files={"photo": ("x.jpg", b"not really a jpeg", "image/jpeg")},
        headers=world.token("chen"),
    )
    assert r.status_code == 422
    assert r.json()["code"] == "NOT_AN_IMAGE"
    assert r.json()["message_zh"]


def test_an_approval_past_the_daily_cap_answers_not_credited(world: World):
    from carbonbook.methodology.registry import get
    from carbonbook.personal.checkins import Checkins
    from tests.personal.test_checkins import photo

    world.identity.register("reviewer", PASSWORD, Role.VERIFIER, owner="verifier:demo")
    service, ali = Checkins(world.identity.engine), get("ali-88@2023")
    done = [service.submit("chen", "metro_checkin", photo(300 + n), ali) for n in range(5)]
    reviewer = world.token("reviewer")
    for checkin in done[:4]:
        r = world.client.post(f"/api/v1/review/checkins/{checkin.id}/approve", headers=reviewer)
        assert r.json()["status"] == "approved"
    r = world.client.post(f"/api/v1/review/checkins/{done[4].id}/approve", headers=reviewer)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["code"]) == ("not_credited", "DAILY_CAP")
    assert r.json()["message_zh"]
    mine = world.client.get("/api/v1/me/checkins", headers=world.token("chen")).json()
    assert {c["id"]: c["status"] for c in mine}[done[4].id] == "not_credited"
