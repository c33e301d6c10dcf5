"""Engines: on SQLite every transaction takes the write lock up front (BEGIN IMMEDIATE), and
`reading()` connections read beside a writer without waiting for it."""

from __future__ import annotations

import sqlalchemy as sa

from carbonbook.db.engine import make_engine, reading
from carbonbook.db.schema import users


def test_a_reader_does_not_wait_for_a_writer_on_sqlite(sqlite_url: str):
    engine = make_engine(sqlite_url)
    with engine.begin() as writer:
        writer.execute(
            users.insert().values(
                id=1,
                username="w",
                display_name="w",
                password_hash="x",
                role="person",
                locale="zh",
                owner="person:w",
                created_at=0,
            )
        )
        # The writer holds SQLite's write lock; a reading() connection sees the last commit.
        with reading(engine) as reader:
            assert reader.execute(sa.select(sa.func.count()).select_from(users)).scalar() == 0
    with reading(engine) as reader:
        assert reader.execute(sa.select(sa.func.count()).select_from(users)).scalar() == 1
    engine.dispose()


def test_a_pooled_connection_goes_back_to_driver_autocommit(sqlite_url: str):
    engine = make_engine(sqlite_url)
    with reading(engine) as reader:
        reader.execute(sa.text("SELECT 1"))
    with engine.begin() as conn:  # the same pooled connection
        assert conn.connection.driver_connection.isolation_level is None
    engine.dispose()
