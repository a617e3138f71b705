"""Database outages: fail fast with 503, never hang, recover by itself.

Runs its own PostgreSQL cluster so that stopping it disturbs no other test.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from webtest import TestApp

from service import db as service_db
from service.app import create_app
from tests.conftest import make_settings, pg_url

pytestmark = [pytest.mark.pg, pytest.mark.slow]


def _bindir() -> Path:
    found = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False).stdout.strip()
    candidates = [Path(found)] if found else []
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for path in candidates:
        if (path / "pg_ctl").exists():
            return path
    pytest.fail("PostgreSQL server binaries (pg_ctl) are needed for the outage test")


@dataclass
class Cluster:
    """A private PostgreSQL server that a test may stop and start."""

    url: str
    datadir: Path
    port: int
    bindir: Path

    def _ctl(self, *args: str) -> None:
        argv = [str(self.bindir / "pg_ctl"), "-D", str(self.datadir), *args]
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            argv = ["runuser", "-u", "postgres", "--", *argv]
        subprocess.run(argv, check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        opts = f"-p {self.port} -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off"
        self._ctl("-w", "-l", str(self.datadir / "log"), "-o", opts, "start")

    def stop(self) -> None:
        self._ctl("-m", "immediate", "-w", "stop")


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    pg_url()  # skip on a laptop without PostgreSQL, fail in CI
    bindir = _bindir()
    datadir = Path(tempfile.mkdtemp(prefix="conduit-outage-", dir="/tmp"))
    initdb = [str(bindir / "initdb"), "-D", str(datadir), "-A", "trust", "-U", "postgres"]
    if os.geteuid() == 0:
        postgres = pwd.getpwnam("postgres")
        os.chown(datadir, postgres.pw_uid, postgres.pw_gid)
        initdb = ["runuser", "-u", "postgres", "--", *initdb]
    subprocess.run(initdb, check=True, capture_output=True, timeout=120)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    node = Cluster(f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", datadir, port, bindir)
    node.start()
    try:
        yield node
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped by the test
            node.stop()
        shutil.rmtree(datadir, ignore_errors=True)


def test_database_outage_gives_fast_503_and_recovers_without_restart(cluster: Cluster) -> None:
    settings = make_settings(database_url=cluster.url, db_connect_timeout=2)
    engine = service_db.make_engine(settings)
    service_db.upgrade(engine)
    client = TestApp(create_app(settings, session_factory=service_db.make_session_factory(engine)))
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
