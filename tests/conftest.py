"""Fixtures shared by every tier.

The database backend is a fixture parameter: API tests run on SQLite (a file
per test, so the app's sessions and the test's session are separate
connections, as in production) and on PostgreSQL (one connection per test
inside an outer transaction that is rolled back; each request's commit becomes
a SAVEPOINT release). PostgreSQL comes from ``TEST_DATABASE_URL``, or else from
a throw-away server the run starts itself from the machine's server binaries;
with neither, the ``pg`` tests skip on a laptop and *fail* when ``CI`` is set.
At the end, the run says how many tests ran on each backend.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from webtest import TestApp

from service import db as service_db
from service import route_table
from service.app import WSGIApp, create_app
from service.config import Settings
from service.db import Database
from service.models import Base
from service.router import Route
from tests import pg

#: The signing key of every test app: long and random enough for production rules.
TEST_SECRET = "test-secret-0123456789-abcdefghijklmnopqrstuvwxyz"


def unavailable(reason: str) -> None:
    """Skip with ``reason`` on a machine that lacks something; fail in CI, where nothing may be skipped."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: in CI every test must run, not skip")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A PostgreSQL server for the run: ``TEST_DATABASE_URL``, else a throw-away one of our own.

    With the server binaries installed (Debian: ``apt-get install postgresql``),
    the suite needs nothing else: it starts a private server on a free port.
    """
    url = os.environ.get("TEST_DATABASE_URL", "")
    if url:
        yield url
        return
    binaries = pg.bindir()
    if binaries is None:
        unavailable("PostgreSQL tests need its server binaries (apt-get install postgresql) or TEST_DATABASE_URL")
    assert binaries is not None
    with pg.private_cluster(binaries) as cluster:
        yield cluster.url


def make_settings(**overrides: object) -> Settings:
    """Settings for a test app."""
    # Rate limiting and caching are off unless a test is about them.
    values: dict[str, object] = {
        "env": "testing",
        "secret_key": TEST_SECRET,
        "database_url": "sqlite://",
        "ratelimit_enabled": False,
        "cache_url": "null",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def pg_engine(pg_url: str) -> Iterator[Engine]:
    """An engine on the test PostgreSQL database, migrated to head once per run."""
    engine = create_engine(pg_url)
    with engine.begin() as connection:
        # A clean slate: whatever a previous (killed) run left behind is dropped.
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    service_db.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("pg", marks=pytest.mark.pg)])
def backend(request: pytest.FixtureRequest) -> str:
    """Which database this test runs on."""
    return str(request.param)


@pytest.fixture
def session_factory(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[sessionmaker[Session]]:
    """Sessions for the app and for the test, isolated per test."""
    if backend == "sqlite":
        settings = make_settings(database_url=f"sqlite:///{tmp_path / 'test.db'}", instance_path=tmp_path)
        engine = service_db.make_engine(settings)
        Base.metadata.create_all(engine)
        yield service_db.make_session_factory(engine)
        engine.dispose()
        return
    engine = request.getfixturevalue("pg_engine")
    connection = engine.connect()
    outer = connection.begin()
    yield service_db.make_session_factory(connection, join_transaction_mode="create_savepoint")
    outer.rollback()
    connection.close()


def routes_with(endpoint: str, view: Callable[..., Any]) -> tuple[Route, ...]:
    """The service's routes, with the view of ``endpoint`` replaced (a broken view, on purpose)."""
    return tuple(dataclasses.replace(r, view=view) if r.endpoint == endpoint else r for r in route_table.ALL_ROUTES)


@pytest.fixture
def settings() -> Settings:
    """The test app's settings."""
    return make_settings()


@pytest.fixture
def app(settings: Settings, session_factory: sessionmaker[Session]) -> WSGIApp:
    """A fresh application per test.

    On SQLite reads run as in production, on connections of the engine's
    autocommit twin; on PostgreSQL every test is one transaction that other
    connections cannot see, so reads run in the test's sessions there (the
    servers of tests/integration cover PostgreSQL's read connections).
    """
    bind = session_factory.kw["bind"]
    read_engine = bind.execution_options(isolation_level="AUTOCOMMIT") if isinstance(bind, Engine) else None
    return create_app(settings, database=Database(session_factory, read_engine))


@pytest.fixture
def client(app: WSGIApp) -> TestApp:
    """webtest client with WSGI lint on; every response is checked against the OpenAPI document."""
    from tests.openapi_check import ValidatingTestApp

    return ValidatingTestApp(app)


@pytest.fixture
def db(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session of the test's own, for arranging and asserting.

    Factories commit, so the app sees what was arranged; call
    ``db.expire_all()`` before reading what a request wrote.
    """
    session = session_factory()
    yield session
    session.rollback()
    session.close()


@contextlib.contextmanager
def _throwaway_database(pg_url: str) -> Iterator[str]:
    base = make_url(pg_url)
    name = f"conduit_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def throwaway_pg_url(pg_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped afterwards (for migration and race tests)."""
    with _throwaway_database(pg_url) as url:
        yield url


@pytest.fixture
def second_pg_url(pg_url: str) -> Iterator[str]:
    """Another new, empty PostgreSQL database, for a test that compares two."""
    with _throwaway_database(pg_url) as url:
        yield url


# -- how many tests ran on each backend (said at the end of the run) ----------

_BACKEND_OF: dict[str, str] = {}
_OUTCOMES: dict[str, Counter[str]] = {}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        _BACKEND_OF[item.nodeid] = str(callspec.params["backend"]) if callspec and "backend" in callspec.params else ""


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" or (report.when == "setup" and not report.passed):
        backend = _BACKEND_OF.get(report.nodeid, "")
        _OUTCOMES.setdefault(backend, Counter())[report.outcome] += 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    names = {"sqlite": "SQLite", "pg": "PostgreSQL", "": "no database or their own"}
    parts = [
        f"{names.get(backend, backend)}: " + ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
        for backend, counts in sorted(_OUTCOMES.items(), key=lambda pair: pair[0] == "")
    ]
    terminalreporter.write_line("tests per backend: " + "; ".join(parts))
