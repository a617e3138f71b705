"""One SQLite file shared by every worker process of a host, for counters and cache entries.

Each process (and thread) opens its own connection lazily, so nothing opened
before a fork is ever shared. Writes are single statements in autocommit mode
(atomic on their own); WAL lets readers and the writer overlap; a busy timeout
makes concurrent workers queue. The data is disposable (counters, cached
answers), so it is written without fsync.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from pathlib import Path

#: How large a WAL file grows before a checkpoint, and the most it keeps on disk after one (SQLite's own
#: default checkpoint is at 1000 pages, about 4 MB).
WAL_SIZE_LIMIT = 4 * 1024 * 1024


class SharedSQLiteFile:
    """A SQLite file with a schema, opened once per process and thread.

    :param path: the file; its folder is created if needed.
    :param schema: ``CREATE TABLE IF NOT EXISTS ...`` statements, run once per connection.
    :param wal_bytes: how large the WAL file may grow before a checkpoint writes it back, and the size a
        checkpoint cuts it back to: a file with a byte bound keeps its WAL a small part of it.
    """

    def __init__(self, path: Path, schema: str, timeout: float = 5.0, wal_bytes: int = WAL_SIZE_LIMIT) -> None:
        self.path = path
        self.schema = schema
        self.timeout = timeout
        self.wal_bytes = wal_bytes
        self._local = threading.local()

    def connection(self) -> sqlite3.Connection:
        """This process's and thread's connection."""
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
            # Switching a new file to WAL does not wait for other processes doing the
            # same (it fails with "database is locked" at once), so workers that start
            # together take turns through a lock file for this one-time set-up.
            with open(self.path.with_name(self.path.name + ".init-lock"), "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                connection.execute("PRAGMA journal_mode=WAL")
                connection.executescript(self.schema)
            connection.execute("PRAGMA synchronous=OFF")
            # A burst of large writes must not leave a WAL file as big as the burst on disk beside the database
            # file: checkpoint every wal_bytes of pages, and cut the file back to that size after each.
            (page_size,) = connection.execute("PRAGMA page_size").fetchone()
            connection.execute(f"PRAGMA wal_autocheckpoint={max(1, self.wal_bytes // page_size)}")
            connection.execute(f"PRAGMA journal_size_limit={self.wal_bytes}")
            local.connection, local.pid = connection, os.getpid()
        return local.connection  # type: ignore[no-any-return]
