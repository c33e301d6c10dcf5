"""The registry pages: who may see them, refusals shown in both languages, the public
certificate."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from carbonbook.db.engine import make_engine
from carbonbook.identity.model import Role
from carbonbook.identity.service import Identity
from carbonbook.registry.service import Registry
from carbonbook.web.app import create_app
from tests.web.test_pages import PASSWORD, csrf_of, h1, log_in


@pytest.fixture
def client(sqlite_url: str) -> Iterator[TestClient]:
    engine = make_engine(sqlite_url)
    identity = Identity(engine)
    identity.register("wang", PASSWORD, Role.ENTERPRISE, owner="ent:steel")
    identity.register("chen", PASSWORD, Role.PERSON, owner="person:chen")
    Registry(engine).issue(
        unit_type="CCER", vintage=2024, to_owner="ent:steel", quantity=10, key="i", by="mee"
    )
    with TestClient(create_app(engine, secret_key="test-secret")) as c:
        yield c
    engine.dispose()


def test_the_registry_page_is_for_holders(client: TestClient):
    assert client.get("/registry", follow_redirects=False).status_code == 303
    log_in(client, "chen")
    assert client.get("/registry").status_code == 403


def test_a_holder_cancels_and_anyone_reads_the_certificate(client: TestClient):
    log_in(client, "wang")
    page = client.get("/registry")
    assert h1(page.text) == "持仓与履约"
    token = csrf_of(page.text)
    form = {
        "asset": "CCER-2024",
        "beneficiary": "某公司",
        "reason": "年会碳中和",
        "csrf": token,
        "key": "k1",
    }
    too_many = client.post("/registry/cancel", data=form | {"quantity": "11"})
    assert too_many.status_code == 409
    assert 'data-code="INSUFFICIENT_UNITS"' in too_many.text
    not_a_number = client.post("/registry/cancel", data=form | {"quantity": "1.5"})
    assert not_a_number.status_code == 422
    done = client.post("/registry/cancel", data=form | {"quantity": "4"}, follow_redirects=False)
    assert done.status_code == 303
    where = done.headers["location"]
    client.cookies.clear()
    public = client.get(where)
    assert public.status_code == 200
    assert "某公司" in public.text
    assert client.get("/certificates/nope").status_code == 404


def test_a_form_without_the_session_token_is_refused(client: TestClient):
    log_in(client, "wang")
    r = client.post(
        "/registry/surrender",
        data={
            "period": "national-2023",
            "asset": "CCER-2024",
            "quantity": "1",
            "csrf": "forged",
            "key": "k",
        },
    )
    assert r.status_code == 403


def test_the_certificate_is_also_a_public_pdf(client: TestClient):
    log_in(client, "wang")
    token = csrf_of(client.get("/registry").text)
    form = {"asset": "CCER-2024", "beneficiary": "某公司", "reason": "年会碳中和", "csrf": token}
    done = client.post(
        "/registry/cancel", data=form | {"quantity": "2", "key": "k2"}, follow_redirects=False
    )
    where = done.headers["location"]
    client.cookies.clear()
    assert f'href="{where}.pdf"' in client.get(where).text
    pdf = client.get(f"{where}.pdf")
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    body = pdf.content
    assert body.startswith(b"%PDF-1.")
    assert body.rstrip().endswith(b"%%EOF")
    assert b"/STSong-Light" in body  # the standard Chinese CID font: nothing embedded
    assert body.count(b"/Type /Page\n") + body.count(b"/Type /Page ") >= 1
    assert client.get(f"{where}.pdf").content == body  # the same certificate, the same bytes
    assert client.get("/certificates/nope.pdf").status_code == 404
