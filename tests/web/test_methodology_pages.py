"""The methodology explainer: the same 2.5 km by shared bike under each version that covers it,
side by side (Beijing 250 g/km, Taobao's 88碳账户 334 g/km)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from carbonbook.db.engine import make_engine
from carbonbook.web.app import create_app


@pytest.fixture
def client(sqlite_url: str) -> Iterator[TestClient]:
    engine = make_engine(sqlite_url)
    with TestClient(create_app(engine, secret_key="test-secret")) as c:
        yield c
    engine.dispose()


def _grams(html: str, ref: str) -> str:
    match = re.search(
        rf'data-ref="{re.escape(ref)}".*?class="num grams">(.*?)</td>', html, re.DOTALL
    )
    assert match, ref
    return re.sub(r"<[^>]+>", "", match.group(1)).strip()


def test_why_my_2_5_km_is_625_g_here_and_835_g_there(client: TestClient):
    page = client.get("/methodologies?behaviour=shared_bike&quantity=2.5")
    assert page.status_code == 200
    assert _grams(page.text, "bj-green-life@2023") == "625 g"
    assert _grams(page.text, "ali-88@2023") == "835 g"


def test_an_implausible_quantity_is_explained_not_counted(client: TestClient):
    page = client.get("/methodologies?behaviour=shared_bike&quantity=5000")
    cell = _grams(page.text, "bj-green-life@2023")
    assert not cell.endswith(" g")  # outside the plausible range: the reason, not grams
    assert "5000" in cell
    nonsense = client.get("/methodologies?behaviour=shared_bike&quantity=lots")
    assert nonsense.status_code == 200
    assert _grams(nonsense.text, "bj-green-life@2023") == "–"
