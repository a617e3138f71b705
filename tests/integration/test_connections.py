"""Connections as production uses them: reads in autocommit, no ping, a lost connection replaced on the fly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, text
from webtest import TestApp

from service import db
from service.app import create_app
from service.db import Database
from tests.conftest import make_settings

REGISTRATION = {"user": {"username": "jake", "email": "jake@x.org", "password": "password1"}}


@pytest.fixture
def served(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[TestApp, Engine]]:
    """The app on an engine of its own, as wsgi.py builds it, on a migrated database of the backend under test."""
    url = f"sqlite:///{tmp_path / 'own.db'}" if backend == "sqlite" else request.getfixturevalue("throwaway_pg_url")
    settings = make_settings(database_url=url, instance_path=tmp_path, auto_migrate=True)
    engine = db.make_engine(settings)
    db.upgrade_to_head(engine, settings)
    reads = db.make_read_engine(engine, settings)  # as Database.for_settings makes them for wsgi.py
    yield TestApp(create_app(settings, database=Database.on(engine, reads))), engine
    reads.dispose()
    engine.dispose()


def _statements(engine: Engine) -> tuple[list[str], list[bool], Any]:
    seen: list[str] = []
    autocommit: list[bool] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement.split()[0].upper())
        dbapi = conn.connection.dbapi_connection
        # psycopg sends no BEGIN in autocommit mode; the SQLite driver is always in autocommit (we send BEGIN).
        autocommit.append(getattr(dbapi, "autocommit", True))

    return seen, autocommit, record


def test_a_read_is_one_statement_with_no_begin_or_commit(served: tuple[TestApp, Engine]) -> None:
    client, engine = served
    client.post_json("/api/users", REGISTRATION, status=201)
    seen, autocommit, record = _statements(engine)

    event.listen(Engine, "before_cursor_execute", record)  # the app's engines, reads' own pool included
    try:
        client.get("/api/profiles/jake")
    finally:
        event.remove(Engine, "before_cursor_execute", record)

    assert seen == ["SELECT"] and autocommit == [True]


@pytest.mark.parametrize("backend", [pytest.param("pg", marks=pytest.mark.pg)])  # killing backends is PostgreSQL's
def test_requests_survive_the_loss_of_their_pooled_connections(served: tuple[TestApp, Engine]) -> None:
    client, engine = served
    client.post_json("/api/users", REGISTRATION, status=201)
    client.get("/api/tags")  # the pool now holds connections that the next step kills
    admin = create_engine(engine.url)
    with admin.connect() as connection:
        killed = connection.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar()
    admin.dispose()

    read = client.get("/api/profiles/jake")
    client.get("/api/tags")
    with admin.connect() as connection:  # and once more, for a write
        connection.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    admin.dispose()
    write = client.post_json("/api/users/login", {"user": {"email": "jake@x.org", "password": "password1"}}, status=200)

    assert killed and read.json["profile"]["username"] == "jake" and write.json["user"]["username"] == "jake"
