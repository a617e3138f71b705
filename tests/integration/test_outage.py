"""Database outages: fail fast with 503, never hang, recover by itself.

Runs its own PostgreSQL cluster so that stopping it disturbs no other test.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from webtest import TestApp

from service import db as service_db
from service.app import create_app
from service.db import Database
from tests import pg
from tests.conftest import make_settings, unavailable

pytestmark = [pytest.mark.pg, pytest.mark.slow]


@pytest.fixture
def cluster() -> Iterator[pg.Cluster]:
    """A server of this test's own, so that stopping it disturbs no other test."""
    binaries = pg.bindir()
    if binaries is None:
        unavailable("the outage test needs PostgreSQL's server binaries (apt-get install postgresql)")
    assert binaries is not None
    with pg.private_cluster(binaries) as node:
        yield node


def test_database_outage_gives_fast_503_and_recovers_without_restart(cluster: pg.Cluster) -> None:
    settings = make_settings(database_url=cluster.url, db_connect_timeout=2)
    engine = service_db.make_engine(settings)
    service_db.upgrade(engine)
    client = TestApp(create_app(settings, database=Database(service_db.make_session_factory(engine))))
    client.get("/api/tags")  # the pool now holds a live connection
    client.get("/readyz")

    cluster.stop()
    started = time.monotonic()
    read = client.get("/api/tags", status=503)
    write = client.post_json(
        "/api/users", {"user": {"username": "u", "email": "u@x.org", "password": "password1"}}, status=503
    )
    ready = client.get("/readyz", status=503)
    elapsed = time.monotonic() - started
    alive = client.get("/healthz")

    cluster.start()
    recovered = client.get("/api/tags")
    registered = client.post_json(
        "/api/users", {"user": {"username": "u", "email": "u@x.org", "password": "password1"}}, status=201
    )
    engine.dispose()

    for response in (read, write, ready):
        assert response.json == {"errors": {"database": ["unavailable"]}}
        assert int(response.headers["Retry-After"]) > 0
    assert elapsed < 3 * settings.db_connect_timeout  # refused or timed out, never hanging
    assert alive.json == {"status": "ok"}  # liveness does not depend on the database
    assert recovered.json == {"tags": []}
    assert registered.json["user"]["username"] == "u"
