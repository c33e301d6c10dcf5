"""The regulator's page: the compliance report with its chart data, allocation runs that a
second regulator approves and issues from the page."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from carbonbook.db.engine import make_engine
from carbonbook.identity.model import Role
from carbonbook.identity.service import Identity
from carbonbook.registry.allocations import Allocations
from carbonbook.registry.compliance import Compliance
from carbonbook.registry.service import Registry
from carbonbook.web.app import create_app
from tests.web.test_pages import PASSWORD, csrf_of, h1, log_in


@pytest.fixture
def client(sqlite_url: str) -> Iterator[TestClient]:
    engine = make_engine(sqlite_url)
    identity = Identity(engine)
    identity.register("mee", PASSWORD, Role.REGULATOR, owner="regulator")
    identity.register("wang", PASSWORD, Role.ENTERPRISE, owner="entity:steel")
    registry = Registry(engine)
    Compliance(registry).set_obligation("national-2024", "entity:steel", 1000, source="r", by="x")
    Allocations(registry).compute(
        "national-industry-2024", "pre", {"entity:steel": {"verified_t": "1000"}}, by="li"
    )
    with TestClient(create_app(engine, secret_key="test-secret")) as c:
        yield c
    engine.dispose()


def test_the_page_is_for_regulators(client: TestClient):
    log_in(client, "wang")
    assert client.get("/regulator").status_code == 403


def test_the_compliance_report_and_its_chart_data(client: TestClient):
    log_in(client, "mee")
    page = client.get("/regulator?period=national-2024")
    assert h1(page.text) == "履约与配额分配"
    data = re.search(r'id="compliance-data">(.*?)</script>', page.text, re.DOTALL)
    assert data
    assert json.loads(data.group(1)) == {
        "owners": ["entity:steel"],
        "obligation": [1000],
        "surrendered": [0],
        "usable": [0],
    }
    assert 'data-owner="entity:steel"' in page.text


def test_approve_then_issue_from_the_page(client: TestClient):
    log_in(client, "mee")
    page = client.get("/regulator")
    run_id = re.search(r'data-run="(\d+)"', page.text)
    assert run_id
    url = f"/regulator/allocation/{run_id.group(1)}"
    client.post(f"{url}/approve", data={"csrf": csrf_of(page.text)})
    page = client.get("/regulator")
    assert "已审核" in page.text
    client.post(f"{url}/issue", data={"csrf": csrf_of(page.text)})
    page = client.get("/regulator")
    assert "已发放" in page.text
    again = client.post(f"{url}/approve", data={"csrf": csrf_of(page.text)})
    assert again.status_code == 409
    assert 'data-code="ALLOCATION_STATE"' in again.text
