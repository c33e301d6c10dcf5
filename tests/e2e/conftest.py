"""A real server on a loopback port and Debian's Chromium driven by Playwright.

Never `playwright install`: the browser is Debian's /usr/bin/chromium. Without it the browser
tests are skipped, except under CI, where a missing browser is a failure.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import uvicorn

from carbonbook.db.engine import make_engine
from carbonbook.identity.model import Role
from carbonbook.identity.service import Identity
from carbonbook.ledger import AccountFlags, Batch, Ledger
from carbonbook.ledger import TransferRequest as T
from carbonbook.web.app import create_app

CHROMIUM = os.environ.get("CARBONBOOK_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "e2e-password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing, and CI must run the browser tests")
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (never playwright install)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield chromium
        chromium.close()


@dataclass
class LiveSite:
    base: str
    username: str
    password: str
    ids: dict[str, int]
    engine: sa.Engine


@pytest.fixture
def live_site(sqlite_url: str) -> Iterator[LiveSite]:
    """The web app under uvicorn in a thread, over a fresh SQLite file with a few transfers.

    Chen's grams: four acts credited, one gift to Xu, one more act (six lines); and some cash.
    """
    engine = make_engine(sqlite_url)
    identity, ledger = Identity(engine), Ledger(engine)
    ledger.ensure_assets()
    identity.register("chen", PASSWORD, Role.PERSON, display_name="陈女士", owner="person:chen")
    identity.register("xu", PASSWORD, Role.PERSON, owner="person:xu")
    scheme = ledger.open_account("scheme:bj-green-life", "CO2E_MG", "issuer", AccountFlags.ISSUER)
    bank = ledger.open_account("bank:settlement", "CNY", "issuer", AccountFlags.ISSUER)
    chen = ledger.open_account("person:chen", "CO2E_MG")
    chen_cny = ledger.open_account("person:chen", "CNY")
    xu = ledger.open_account("person:xu", "CO2E_MG")
    moves = [
        T.move(scheme.id, chen.id, "CO2E_MG", 625_000, "shared_bike"),
        T.move(scheme.id, chen.id, "CO2E_MG", 45_720, "no_cutlery"),
        T.move(scheme.id, chen.id, "CO2E_MG", 5_000, "e_waybill"),
        T.move(chen.id, xu.id, "CO2E_MG", 1_000, "gift"),
        T.move(scheme.id, chen.id, "CO2E_MG", 250_000, "shared_bike"),
        T.move(scheme.id, chen.id, "CO2E_MG", 1_234_560, "shared_e_bike"),
        T.move(bank.id, chen_cny.id, "CNY", 123_456, "deposit"),
    ]
    for i, move in enumerate(moves):  # one batch each: a line per batch, as in real life
        ledger.post(Batch("e2e", f"seed-{i}", [move]))

    app = create_app(engine, secret_key="e2e-secret")
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-e2e", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the web server did not start in 30 s")
        time.sleep(0.05)
    try:
        yield LiveSite(f"http://127.0.0.1:{port}", "chen", PASSWORD, {"chen": chen.id}, engine)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        engine.dispose()


@pytest.fixture
def demo_server(tmp_path: Path) -> Iterator[str]:
    """`carbonbook demo` on a fresh SQLite file, served on a free loopback port."""
    port = free_port()
    env = {**os.environ, "CARBONBOOK_SECRET_KEY": "e2e-secret"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "carbonbook.cli.main",
            "demo",
            "--port",
            str(port),
            "--database",
            f"sqlite:///{tmp_path / 'demo.db'}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if proc.poll() is not None:
                output = proc.stdout.read().decode() if proc.stdout else "server died"
                raise RuntimeError(output) from None
            time.sleep(0.2)
    else:
        proc.kill()
        raise RuntimeError("the demo server did not start in 90 s")
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=30)
