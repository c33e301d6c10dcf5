"""What every benchmark shares: the machine's description, timers, peak memory, fresh databases."""

from __future__ import annotations

import os
import platform
import resource
import sqlite3
import subprocess
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import sqlalchemy as sa

from carbonbook.db.engine import normalise_url
from carbonbook.db.migrate import upgrade

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[1]


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{platform.system()} {platform.release()} {platform.machine()}; {cpu}; "
        f"{os.cpu_count()} cores; {mem_gib:.0f} GiB; Python {platform.python_version()}; "
        f"SQLite {sqlite3.sqlite_version}"
    )


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Timer:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    def seconds(self) -> float:
        return time.perf_counter() - self.start


def pg_url() -> str | None:
    return os.environ.get("CARBONBOOK_BENCH_PG_URL") or os.environ.get("CARBONBOOK_TEST_PG_URL")


def pg_version(url: str) -> str:
    engine = sa.create_engine(normalise_url(url))
    with engine.connect() as conn:
        version = str(conn.execute(sa.text("SHOW server_version")).scalar_one())
        settings = {
            name: str(conn.execute(sa.text(f"SHOW {name}")).scalar_one())
            for name in ("fsync", "synchronous_commit")
        }
    engine.dispose()
    return (
        f"PostgreSQL {version} (fsync={settings['fsync']}, "
        f"synchronous_commit={settings['synchronous_commit']})"
    )


@contextmanager
def fresh_database(backend: str, workdir: Path) -> Iterator[str]:
    """A migrated, empty database: a new SQLite file, or a new PostgreSQL schema."""
    if backend == "sqlite":
        path = workdir / f"bench-{uuid.uuid4().hex[:8]}.db"
        url = f"sqlite:///{path}"
        upgrade(url)
        try:
            yield url
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    base = pg_url()
    if not base:
        msg = "no PostgreSQL URL (CARBONBOOK_BENCH_PG_URL)"
        raise RuntimeError(msg)
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(normalise_url(base))
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    url = f"{normalise_url(base)}{sep}options={quote(f'-csearch_path={schema}')}"
    try:
        upgrade(url)
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def git_revision() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
