"""A real server on a loopback port and Debian's Chromium driven by Playwright.

Never `playwright install`: the browser is Debian's /usr/bin/chromium.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CARBONBOOK_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing in CI")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield chromium
        chromium.close()


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
    base = f"http://127.0.0.1:{port}"
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
    yield base
    proc.terminate()
    proc.wait(timeout=30)
