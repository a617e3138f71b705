"""A ``limits`` storage on a SQLite file: one counter table shared by every worker of a host.

``limits``' ``memory://`` storage lives in one process, so N gunicorn workers
would allow N times the limit. This storage keeps the counters in a SQLite file
(``sqlitefile:///path/ratelimit.db``) that all workers open. Each hit is one
atomic statement (an UPSERT with RETURNING), so concurrent workers never lose an
increment, and needs no server. For several hosts, use ``redis://``.

``stores.make_limiter`` builds it for ``sqlitefile://`` URIs.
"""

from __future__ import annotations

import random
import sqlite3
import time
from pathlib import Path
from typing import Any

from limits.storage import Storage

from service.stores.sqlite_file import SharedSQLiteFile

#: One hit in this many also deletes expired counters, so the file stays small.
_PURGE_ONE_IN = 500

_SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL,
    expires_at REAL NOT NULL
) WITHOUT ROWID;
"""

_INCR = """
INSERT INTO counters (key, value, expires_at) VALUES (:key, :amount, :now + :expiry)
ON CONFLICT (key) DO UPDATE SET
    value = CASE WHEN counters.expires_at <= :now THEN :amount ELSE counters.value + :amount END,
    expires_at = CASE WHEN counters.expires_at <= :now THEN :now + :expiry ELSE counters.expires_at END
RETURNING value
"""


class SQLiteCounterStorage(Storage):
    """Fixed-window counters in a SQLite file: ``sqlitefile:///absolute/path.db``."""

    STORAGE_SCHEME = ["sqlitefile"]

    def __init__(self, uri: str, wrap_exceptions: bool = False, **options: Any) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        path = uri.split("://", 1)[1]
        if not path or path == "/":
            raise ValueError("sqlitefile:// needs a file path, e.g. sqlitefile:///var/lib/conduit/ratelimit.db")
        self._file = SharedSQLiteFile(Path(path), _SCHEMA, timeout=float(options.get("timeout", 5.0)))

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return sqlite3.Error

    def _connection(self) -> sqlite3.Connection:
        return self._file.connection()

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """Add ``amount`` to the counter, starting a new window if the old one expired."""
        connection = self._connection()
        now = time.time()
        value = connection.execute(_INCR, {"key": key, "amount": amount, "now": now, "expiry": expiry}).fetchone()[0]
        if random.randrange(_PURGE_ONE_IN) == 0:
            connection.execute("DELETE FROM counters WHERE expires_at <= ?", (now,))
        return int(value)

    def get(self, key: str) -> int:
        """The counter's value in its current window (0 when there is none)."""
        row = (
            self._connection()
            .execute("SELECT value FROM counters WHERE key = ? AND expires_at > ?", (key, time.time()))
            .fetchone()
        )
        return int(row[0]) if row else 0

    def get_expiry(self, key: str) -> float:
        """When the current window ends (now, when there is none)."""
        now = time.time()
        row = (
            self._connection()
            .execute("SELECT expires_at FROM counters WHERE key = ? AND expires_at > ?", (key, now))
            .fetchone()
        )
        return float(row[0]) if row else now

    def check(self) -> bool:
        """Whether the file can be opened and queried."""
        try:
            self._connection().execute("SELECT 1").fetchone()
            return True
        except sqlite3.Error:
            return False

    def reset(self) -> int | None:
        """Forget every counter; returns how many there were."""
        return self._connection().execute("DELETE FROM counters").rowcount

    def clear(self, key: str) -> None:
        """Forget one counter."""
        self._connection().execute("DELETE FROM counters WHERE key = ?", (key,))
