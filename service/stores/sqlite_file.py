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


class SharedSQLiteFile:
    """A SQLite file with a schema, opened once per process and thread.

    :param path: the file; its folder is created if needed.
    :param schema: ``CREATE TABLE IF NOT EXISTS ...`` statements, run once per connection.
    """

    def __init__(self, path: Path, schema: str, timeout: float = 5.0) -> None:
        self.path = path
        self.schema = schema
        self.timeout = timeout
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
            local.connection, local.pid = connection, os.getpid()
        return local.connection  # type: ignore[no-any-return]
