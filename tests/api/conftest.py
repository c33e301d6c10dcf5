from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from carbonbook.api.app import create_api
from carbonbook.identity.model import Role
from carbonbook.identity.service import Identity
from carbonbook.ledger import AccountFlags, Batch, Ledger
from carbonbook.ledger import TransferRequest as T

PASSWORD = "correct horse battery"


@dataclass
class World:
    client: TestClient
    identity: Identity
    ledger: Ledger
    ids: dict[str, int]

    def token(self, username: str) -> dict[str, str]:
        r = self.client.post(
            "/api/v1/auth/token", json={"username": username, "password": PASSWORD}
        )
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['token']}"}


@pytest.fixture
def world(engine: sa.Engine) -> Iterator[World]:
    identity = Identity(engine)
    ledger = Ledger(engine)
    ledger.ensure_assets()
    identity.register("admin", PASSWORD, Role.REGULATOR, owner="regulator")
    identity.register("operator", PASSWORD, Role.OPERATOR, owner="exchange:operator")
    identity.register("chen", PASSWORD, Role.PERSON, owner="person:chen")
    identity.register("xu", PASSWORD, Role.PERSON, owner="person:xu")
    issuer = ledger.open_account("scheme", "POINT", "issuer", AccountFlags.ISSUER)
    chen = ledger.open_account("person:chen", "POINT")
    xu = ledger.open_account("person:xu", "POINT")
    ledger.post(Batch("t", "seed", [T.move(issuer.id, chen.id, "POINT", 13, "daily_points")]))
    with TestClient(create_api(engine)) as client:
        yield World(client, identity, ledger, {"issuer": issuer.id, "chen": chen.id, "xu": xu.id})
