"""Probes and metrics: /healthz (alive), /readyz (database reachable, migrations current, no
worker yet), /metrics for Prometheus (requests and latencies by route template, ledger
batches posted)."""

from __future__ import annotations

import re

import sqlalchemy as sa
from fastapi.testclient import TestClient

from carbonbook.api.app import create_api
from carbonbook.identity.model import Role
from carbonbook.identity.service import Identity
from carbonbook.ledger import AccountFlags, Batch, Ledger
from carbonbook.ledger import TransferRequest as T

PASSWORD = "health-test-password"


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus's text format (0 when absent)."""
    for line in text.splitlines():
        if not line.startswith(name + ("{" if labels else " ")):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_healthz_says_alive_and_readyz_checks_the_database_and_migrations(
    engine: sa.Engine,
) -> None:
    with TestClient(create_api(engine)) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {
            "status": "ready",
            "checks": {"database": "ok", "migrations": "ok", "worker": "unknown"},
        }
        with engine.begin() as conn:  # a database one migration behind the code
            conn.execute(sa.text("UPDATE alembic_version SET version_num = '0001'"))
        behind = client.get("/readyz")
        assert behind.status_code == 503
        assert behind.json()["status"] == "not ready"
        assert behind.json()["checks"]["migrations"].startswith("at 0001")


def test_readyz_is_503_when_the_database_is_unreachable(engine: sa.Engine) -> None:
    with TestClient(create_api(engine)) as client:
        client.app.state.ctx.engine = sa.create_engine(  # type: ignore[attr-defined]
            "postgresql+psycopg://nobody@127.0.0.1:1/none", connect_args={"connect_timeout": 2}
        )
        gone = client.get("/readyz")
    assert gone.status_code == 503
    assert gone.json()["checks"]["database"].startswith("unreachable")


def test_metrics_count_requests_by_route_template_and_committed_ledger_batches(
    engine: sa.Engine,
) -> None:
    identity, ledger = Identity(engine), Ledger(engine)
    ledger.ensure_assets()
    identity.register("chen", PASSWORD, Role.PERSON, owner="person:chen")
    issuer = ledger.open_account("scheme", "POINT", "issuer", AccountFlags.ISSUER)
    chen = ledger.open_account("person:chen", "POINT")
    with TestClient(create_api(engine)) as client:
        before = client.get("/metrics").text
        token = client.post(
            "/api/v1/auth/token", json={"username": "chen", "password": PASSWORD}
        ).json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        for _ in range(2):
            assert client.get(f"/api/v1/accounts/{chen.id}", headers=auth).status_code == 200
        batch = Batch("t", "metrics-1", [T.move(issuer.id, chen.id, "POINT", 5, "daily_points")])
        ledger.post(batch)
        ledger.post(batch)  # a replay: nothing posted
        after = client.get("/metrics")
    assert after.headers["content-type"].startswith("text/plain")
    route = {"method": "GET", "route": "/api/v1/accounts/{account_id}", "status": "200"}
    name = "carbonbook_http_requests_total"
    assert _sample(after.text, name, **route) - _sample(before, name, **route) == 2
    assert f"/api/v1/accounts/{chen.id}" not in after.text  # templates, not raw paths
    latency = "carbonbook_http_request_duration_seconds_count"
    timed = {"method": "GET", "route": "/api/v1/accounts/{account_id}"}
    assert _sample(after.text, latency, **timed) - _sample(before, latency, **timed) == 2
    batches = "carbonbook_ledger_batches_posted_total"
    assert _sample(after.text, batches) - _sample(before, batches) == 1
