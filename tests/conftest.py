"""Shared fixtures: every database test runs on SQLite and, when a server is there, PostgreSQL.

`make test` starts a throwaway PostgreSQL cluster and sets CARBONBOOK_TEST_PG_URL; each test
gets its own schema there (search_path in the URL), so tests never see each other's rows.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from carbonbook.db.engine import make_engine, normalise_url
from carbonbook.db.migrate import upgrade
from carbonbook.ledger import Ledger

PG_URL = os.environ.get("CARBONBOOK_TEST_PG_URL")

DATABASES = [
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
]


def pg_schema_url(schema: str) -> str:
    assert PG_URL
    base = normalise_url(PG_URL)
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options={quote(f'-csearch_path={schema}')}"


@contextmanager
def database(backend: str, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database URL on `backend` ("sqlite" or "postgres")."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'carbonbook.db'}"
        upgrade(url)
        yield url
        return
    if not PG_URL:
        pytest.skip("no PostgreSQL: CARBONBOOK_TEST_PG_URL is unset")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(normalise_url(PG_URL))
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = pg_schema_url(schema)
    try:
        upgrade(url)
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=DATABASES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Parametrised over SQLite and PostgreSQL."""
    with database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    """SQLite only, for tests of what does not depend on the database."""
    with database("sqlite", tmp_path) as url:
        yield url


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def ledger(engine: sa.Engine) -> Ledger:
    book = Ledger(engine)
    book.ensure_assets()
    return book
