"""Database outages: fail fast with 503, never hang, recover by itself.

Runs its own PostgreSQL cluster so that stopping it disturbs no other test.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

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


def _two_host_url(first: pg.Cluster, second: pg.Cluster) -> str:
    """libpq's multi-host URL: try each host in turn, keep the one that accepts writes."""
    hosts = f"host=127.0.0.1:{first.port}&host=127.0.0.1:{second.port}"
    return f"postgresql+psycopg://postgres@/postgres?{hosts}&target_session_attrs=read-write"


def _register(client: TestApp, name: str) -> tuple[int, float]:
    started = time.monotonic()
    reply = client.post_json(
        "/api/users", {"user": {"username": name, "email": f"{name}@x.org", "password": "password1"}}, status="*"
    )
    return reply.status_int, time.monotonic() - started


def test_a_failover_to_a_promoted_standby_keeps_every_acknowledged_write_and_needs_no_restart(
    cluster: pg.Cluster,
) -> None:
    """The primary dies under writes and its synchronous standby is promoted: the service finds it alone."""
    setup = service_db.make_engine(make_settings(database_url=cluster.url))
    service_db.upgrade(setup)
    setup.dispose()
    with pg.standby_of(cluster) as standby:
        settings = make_settings(database_url=_two_host_url(cluster, standby), db_connect_timeout=2)
        engine = service_db.make_engine(settings)
        client = TestApp(create_app(settings, database=Database(service_db.make_session_factory(engine))))
        acknowledged, answers = [], []
        for n in range(20):
            status, seconds = _register(client, f"before{n}")
            answers.append((status, seconds))
            acknowledged += [f"before{n}"] if status == 201 else []

        cluster.stop()  # the primary's machine dies: sessions cut, nothing written out
        for n in range(3):
            answers.append(_register(client, f"between{n}"))
        standby.promote()
        promoted = time.monotonic()
        recovered_after = None
        for n in range(200):
            status, seconds = _register(client, f"after{n}")
            answers.append((status, seconds))
            if status == 201:
                acknowledged.append(f"after{n}")
                recovered_after = recovered_after or time.monotonic() - promoted
            if len(acknowledged) >= 40:
                break
        read = client.get("/api/profiles/before0", status="*")
        engine.dispose()

        check = service_db.make_engine(make_settings(database_url=standby.url))
        with check.connect() as connection:
            kept = {name for (name,) in connection.exec_driver_sql("SELECT username FROM users")}
        check.dispose()

    assert {status for status, _ in answers} <= {201, 503}, answers
    assert set(acknowledged) <= kept  # every acknowledged write is on the new primary
    assert recovered_after is not None and recovered_after < 5, recovered_after
    assert read.status_int == 200
    assert max(seconds for _, seconds in answers) < settings.db_connect_timeout * 2 + 1  # none hung


def test_a_pooled_connection_on_a_server_turned_read_only_is_dropped_and_the_write_goes_to_the_writable_host(
    cluster: pg.Cluster, tmp_path: Path
) -> None:
    """What a connection left on a demoted primary sees: 25006 on every write. It is dropped and the
    request run again, on the host that accepts writes now, instead of failing (a 500 before)."""
    binaries = pg.bindir()
    assert binaries is not None
    with pg.private_cluster(binaries) as other:
        for node in (cluster, other):
            setup = service_db.make_engine(make_settings(database_url=node.url))
            service_db.upgrade(setup)
            setup.dispose()
        settings = make_settings(database_url=_two_host_url(cluster, other), db_connect_timeout=2)
        engine = service_db.make_engine(settings)
        client = TestApp(create_app(settings, database=Database(service_db.make_session_factory(engine))))
        assert _register(client, "first")[0] == 201  # on the first host, which holds the pooled connection
        cluster.psql("ALTER SYSTEM SET default_transaction_read_only = on")
        cluster.psql("SELECT pg_reload_conf()")
        time.sleep(0.5)  # every backend has read the new configuration

        status, _ = _register(client, "second")
        engine.dispose()

        on = {}
        for name, node in (("first", cluster), ("other", other)):
            check = service_db.make_engine(make_settings(database_url=node.url))
            with check.connect() as connection:
                on[name] = {n for (n,) in connection.exec_driver_sql("SELECT username FROM users")}
            check.dispose()

    assert status == 201
    assert on == {"first": {"first"}, "other": {"second"}}
