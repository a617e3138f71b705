"""Throw-away PostgreSQL servers from the machine's server binaries (Debian's ``postgresql-15``).

The test suite starts one for the whole run when ``TEST_DATABASE_URL`` names
none, and the outage test starts one of its own to stop and start. PostgreSQL
refuses to run as root, so as root the server runs as the ``postgres`` user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


def bindir() -> Path | None:
    """Where ``pg_ctl`` and ``initdb`` are: ``pg_config --bindir``, or Debian's versioned folders."""
    candidates = []
    if shutil.which("pg_config"):
        found = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False).stdout.strip()
        candidates.append(Path(found))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    return next((path for path in candidates if (path / "pg_ctl").exists() and (path / "initdb").exists()), None)


def _as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@dataclass
class Cluster:
    """A private PostgreSQL server on a loopback port."""

    url: str
    datadir: Path
    port: int
    bindir: Path

    def _ctl(self, *args: str) -> None:
        argv = _as_postgres([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), *args])
        subprocess.run(argv, check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        opts = f"-p {self.port} -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._ctl("-w", "-l", str(self.datadir / "log"), "-o", opts, "start")

    def stop(self) -> None:
        """Stop at once, as a crash would (sessions cut, nothing written out)."""
        self._ctl("-m", "immediate", "-w", "stop")

    def psql(self, statement: str) -> None:
        """Run one SQL statement on the server as ``postgres`` (``ALTER SYSTEM`` cannot run in a transaction)."""
        argv = [str(self.bindir / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", "postgres"]
        subprocess.run(_as_postgres([*argv, "-v", "ON_ERROR_STOP=1", "-c", statement]), check=True, capture_output=True)

    def promote(self) -> None:
        """Make a standby the primary (``pg_ctl promote``), waiting until it accepts writes."""
        self._ctl("-w", "promote")

    def shut_down(self) -> None:
        """Stop cleanly: an immediate stop leaves its shared memory segments behind in /dev/shm."""
        self._ctl("-m", "fast", "-w", "stop")


@contextlib.contextmanager
def private_cluster(binaries: Path) -> Iterator[Cluster]:
    """initdb, start, yield, stop and remove a server of its own."""
    datadir = _datadir("conduit-pg-")
    initdb = _as_postgres([str(binaries / "initdb"), "-D", str(datadir), "-A", "trust", "-U", "postgres"])
    subprocess.run(initdb, check=True, capture_output=True, timeout=120)
    with _started(datadir, binaries) as node:
        yield node


def _datadir(prefix: str) -> Path:
    """An empty data folder that the server's user owns."""
    datadir = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    if os.geteuid() == 0:
        postgres = pwd.getpwnam("postgres")
        os.chown(datadir, postgres.pw_uid, postgres.pw_gid)
    return datadir


@contextlib.contextmanager
def _started(datadir: Path, binaries: Path) -> Iterator[Cluster]:
    """Start the server of ``datadir`` on a free loopback port; stop it and remove the folder afterwards."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    node = Cluster(f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", datadir, port, binaries)
    node.start()
    try:
        yield node
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # a test may have stopped it already
            node.shut_down()
        shutil.rmtree(datadir, ignore_errors=True)


@contextlib.contextmanager
def standby_of(primary: Cluster, synchronous: bool = True) -> Iterator[Cluster]:
    """A streaming-replication standby of ``primary`` (``pg_basebackup -R``), stopped and removed afterwards.

    :param synchronous: make the primary wait for it at every commit (``synchronous_standby_names``), so
        that an acknowledged write is on the standby too (docs/deploy.md, "PostgreSQL failover").
    """
    datadir = _datadir("conduit-pg-standby-")
    source = ["-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres"]
    backup = _as_postgres([str(primary.bindir / "pg_basebackup"), *source, "-D", str(datadir), "-R", "-X", "stream"])
    subprocess.run(backup, check=True, capture_output=True, timeout=120)
    with _started(datadir, primary.bindir) as node:
        if synchronous:
            primary.psql("ALTER SYSTEM SET synchronous_standby_names = '*'")
            primary.psql("SELECT pg_reload_conf()")
        yield node
