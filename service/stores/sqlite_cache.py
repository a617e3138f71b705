"""A cachelib cache on a SQLite file, shared by every worker process of a host.

cachelib's FileSystemCache creates a file per entry (plus a shared count file),
which costs a third of the uncached throughput in ``bench/throughput.py``; one
UPSERT in a shared SQLite file costs a few hundredths of a millisecond. Entries
expire by their own time stamp; now and then a write also deletes expired rows.
The values are our own responses, pickled, in a file of the instance folder.
"""

from __future__ import annotations

import contextlib
import pickle
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from cachelib import BaseCache

from service.shared_reads.store import VersionedEntry, VersionedStore
from service.stores.sqlite_file import WAL_SIZE_LIMIT, SharedSQLiteFile

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    expires_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dependents (
    version TEXT NOT NULL,
    entry TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (version, entry)
) WITHOUT ROWID;
"""
#: At most one write in this many (per process) also purges: expired entries, then any over the threshold.
_PURGE_EVERY = 1000
#: ``expires_at`` of entries that never expire.
_NEVER = float("inf")
#: A purge frees the entries' bytes down to this part of ``max_bytes``: what the workers write until their next
#: purges (a fortieth each) and the WAL file (a twentieth) then fit within the bound on disk.
_FILL = 0.85
#: The most bytes (pickled) of hits a worker's thread keeps in memory beside the file (``SQLiteCache.get_fresh``).
_HITS_BYTES = 16 * 1024 * 1024


class SQLiteCache(BaseCache, VersionedStore):
    """cachelib's interface over a SQLite file.

    :param path: the file, e.g. ``instance/cache.db``.
    :param default_timeout: seconds an entry lives when ``set`` is given none; 0 = forever.
    :param threshold: about how many entries the file may hold. Beyond it, a purge
        deletes the entries closest to expiry, so a flood of distinct URLs cannot
        fill the disk; entries that never expire (the write counter) go last.
    :param max_bytes: about how many bytes the files may take on disk, the WAL file
        included, purged the same way (the values down to 85 % of it): a flood of
        large answers cannot fill the disk either.
    """

    #: Only this host's workers read the file: a write needs no bump before it commits.
    shared_by_hosts = False

    def __init__(
        self, path: Path, default_timeout: int = 300, threshold: int = 10000, max_bytes: int = 256 * 1024 * 1024
    ) -> None:
        super().__init__(default_timeout=default_timeout)
        self._file = SharedSQLiteFile(path, _SCHEMA, wal_bytes=min(WAL_SIZE_LIMIT, max(64 * 1024, max_bytes // 20)))
        self._threshold = threshold
        self._max_bytes = max_bytes
        self._keep_bytes = int(max_bytes * _FILL)
        # Purge often enough that the file overshoots its bounds by a tenth of the entries and a fortieth of the
        # bytes at most per process, so a few workers together stay within the bound on disk, WAL included.
        self._purge_every = max(1, min(_PURGE_EVERY, threshold // 10))
        self._purge_bytes = max_bytes // 40
        self._writes = 0
        self._written = 0  # bytes stored since the last purge
        self._hits = _HitsByConnection(min(_HITS_BYTES, max_bytes // 8))

    def _expires_at(self, timeout: int | timedelta | None) -> float:
        if timeout is None:
            timeout = self.default_timeout
        seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
        return _NEVER if seconds == 0 else time.time() + seconds

    def get(self, key: str) -> Any:
        row = (
            self._file.connection()
            .execute("SELECT value FROM entries WHERE key = ? AND expires_at > ?", (key, time.time()))
            .fetchone()
        )
        return _loads(row[0]) if row else None

    def get_many(self, *keys: str) -> list[Any]:
        """The values of ``keys`` (None where missing), in one statement rather than one per key."""
        if not keys:
            return []
        marks = ", ".join("?" * len(keys))
        rows = (
            self._file.connection()
            .execute(f"SELECT key, value FROM entries WHERE key IN ({marks}) AND expires_at > ?", (*keys, time.time()))
            .fetchall()
        )
        found = dict(rows)
        return [_loads(found[key]) if key in found else None for key in keys]

    def set(self, key: str, value: Any, timeout: int | timedelta | None = None) -> bool:
        connection = self._file.connection()
        blob = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        connection.execute(
            "INSERT OR REPLACE INTO entries (key, value, expires_at) VALUES (?, ?, ?)",
            (key, blob, self._expires_at(timeout)),
        )
        self._writes += 1
        self._written += len(blob)
        if self._writes % self._purge_every == 0 or self._written > self._purge_bytes:
            self._purge(connection)
        return True

    def _purge(self, connection: sqlite3.Connection) -> None:
        """Delete expired entries, then the soonest to expire beyond the threshold and the byte bound."""
        self._written = 0
        now = time.time()
        connection.execute("DELETE FROM entries WHERE expires_at <= ?", (now,))
        # A dependent row lives as long as its entry: never gone while the entry can still be served.
        connection.execute("DELETE FROM dependents WHERE expires_at <= ?", (now,))
        count, size = connection.execute("SELECT count(*), coalesce(sum(length(value)), 0) FROM entries").fetchone()
        if count > self._threshold:
            connection.execute(
                "DELETE FROM entries WHERE key IN (SELECT key FROM entries ORDER BY expires_at LIMIT ?)",
                (count - self._threshold,),
            )
        if size > self._keep_bytes:
            # The soonest to expire, as many as it takes to free the excess (a running sum).
            connection.execute(
                "DELETE FROM entries WHERE key IN (SELECT key FROM (SELECT key, length(value) AS size,"
                " sum(length(value)) OVER (ORDER BY expires_at, key) AS running FROM entries)"
                " WHERE running - size < ?)",
                (size - self._keep_bytes,),
            )

    def add(self, key: str, value: Any, timeout: int | timedelta | None = None) -> bool:
        """Set ``key`` only if it holds no live entry; atomic across processes."""
        now = time.time()
        cursor = self._file.connection().execute(
            "INSERT INTO entries (key, value, expires_at) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at "
            "WHERE entries.expires_at <= ?",
            (key, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL), self._expires_at(timeout), now),
        )
        return cursor.rowcount == 1

    def keep_versioned(self, counter: str, entry: VersionedEntry) -> None:
        """Store an entry made at ``counter`` value ``made_at`` unless a version it shows moved past that.

        Here a bump deletes the entries that show what it bumps (the
        ``dependents`` rows), so a hit is one plain lookup; what keeps an entry
        computed across a write out is this check, in the same kind of
        transaction as a bump (one of them waits for the other): the entry is
        stored only while none of its versions is past ``made_at``. A version
        missing (never bumped, or purged) is created at the counter's current
        value, so an entry whose reader began before some later write is not
        stored (a miss later, never a stale answer).
        """
        key, made_at, names = entry.key, entry.made_at, sorted(set(entry.versions))
        now, expires_at = time.time(), self._expires_at(entry.timeout)
        versions_expire = self._expires_at(entry.versions_timeout)
        blob = pickle.dumps(entry.value, protocol=pickle.HIGHEST_PROTOCOL)
        with self._transaction() as connection:
            marks = ", ".join("?" * len(names))
            found = dict(
                connection.execute(
                    f"SELECT key, value FROM entries WHERE key IN ({marks}) AND expires_at > ?", (*names, now)
                ).fetchall()
                if names
                else []
            )
            if any(name in found and not (isinstance(found[name], int) and found[name] <= made_at) for name in names):
                return  # a write it does not show changed what it shows since the reader began
            missing = [name for name in names if name not in found]
            if missing:
                (current,) = connection.execute(
                    "SELECT value FROM entries WHERE key = ? AND expires_at > ?", (counter, now)
                ).fetchone() or (None,)
                seq = _loads(current) if current is not None else None
                if seq != made_at:
                    return  # writes happened since the reader began: whether they touched these, nobody knows
                connection.executemany(
                    "INSERT OR REPLACE INTO entries (key, value, expires_at) VALUES (?, ?, ?)",
                    [(name, made_at, versions_expire) for name in missing],
                )
            connection.execute(
                "INSERT OR REPLACE INTO entries (key, value, expires_at) VALUES (?, ?, ?)", (key, blob, expires_at)
            )
            connection.executemany(
                "INSERT OR REPLACE INTO dependents (version, entry, expires_at) VALUES (?, ?, ?)",
                [(name, key, expires_at) for name in names],
            )
        self._writes += 1
        self._written += len(blob)
        if self._writes % self._purge_every == 0 or self._written > self._purge_bytes:
            self._purge(self._file.connection())

    def get_fresh(self, counter: str, key: str) -> tuple[Any, Any]:
        """``(counter, entry)``: one lookup, as an entry that a bump made stale was deleted by it.

        A hit is kept in this connection's memo of hits (:class:`_Hits`) and
        answered from it while the file is as it was when the hit was read.
        SQLite's ``PRAGMA data_version`` moves when another connection (another
        worker's bump or store) commits; the connection's ``total_changes`` when
        this one writes. Either empties the memo, so a hit served from it is one
        that the file would have answered at that moment, without reading and
        unpickling the entry again.
        """
        connection = self._file.connection()
        (version,) = connection.execute("PRAGMA data_version").fetchone()
        state = (version, connection.total_changes)
        hits = self._hits.get(connection, state)
        now = time.time()
        kept = hits.entries.get((counter, key))
        if kept is not None and kept[2] > now:
            return kept[0], kept[1]
        rows = connection.execute(
            "SELECT key, value, expires_at FROM entries WHERE key IN (?, ?) AND expires_at > ?", (counter, key, now)
        ).fetchall()
        found = {name: (value, expires_at) for name, value, expires_at in rows}
        seq = _loads(found[counter][0]) if counter in found else None
        if key not in found:
            return seq, None
        blob, expires_at = found[key]
        entry = _loads(blob)
        hits.keep(
            (counter, key),
            (seq, entry, min(expires_at, found[counter][1]) if counter in found else 0.0),
            len(blob) if isinstance(blob, bytes) else 0,
        )
        return seq, entry

    def bump_versions(self, counter: str, names: Iterable[str], seed: int, timeout: int) -> int:
        """Add one to ``counter`` (from ``seed`` when it is missing) and set ``names`` to it, atomically.

        One ``BEGIN IMMEDIATE`` transaction: every other process's bump waits, so
        the counter only grows and no name is left at an older value.
        """
        with self._transaction() as connection:
            row = connection.execute(
                "SELECT value FROM entries WHERE key = ? AND expires_at > ?", (counter, time.time())
            ).fetchone()
            current = pickle.loads(row[0]) if row else None
            value = (current if isinstance(current, int) else seed) + 1
            dump, expires_at = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL), self._expires_at(timeout)
            connection.execute(
                "INSERT OR REPLACE INTO entries (key, value, expires_at) VALUES (?, ?, ?)", (counter, dump, _NEVER)
            )
            # Versions are plain integers. The entries that show what is bumped go.
            names = list(names)
            connection.executemany(
                "INSERT OR REPLACE INTO entries (key, value, expires_at) VALUES (?, ?, ?)",
                [(name, value, expires_at) for name in names],
            )
            marks = ", ".join("?" * len(names))
            connection.execute(
                f"DELETE FROM entries WHERE key IN (SELECT entry FROM dependents WHERE version IN ({marks}))", names
            )
            connection.execute(f"DELETE FROM dependents WHERE version IN ({marks})", names)
        return value

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        connection = self._file.connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def delete(self, key: str) -> bool:
        return self._file.connection().execute("DELETE FROM entries WHERE key = ?", (key,)).rowcount == 1

    def has(self, key: str) -> bool:
        return self.get(key) is not None

    def clear(self) -> bool:
        self._file.connection().execute("DELETE FROM entries")
        return True


class _Hits:
    """Hits read on one connection while the file stood at ``state``: ``(counter, key) -> (seq, entry, until)``."""

    __slots__ = ("bytes", "entries", "limit", "state")

    def __init__(self, state: tuple[int, int], limit: int) -> None:
        self.state = state
        self.limit = limit
        self.entries: dict[tuple[str, str], tuple[Any, Any, float]] = {}
        self.bytes = 0

    def keep(self, name: tuple[str, str], hit: tuple[Any, Any, float], size: int) -> None:
        """Remember a hit; past the byte limit, start over (a flood of distinct pages keeps nothing for long)."""
        if self.bytes + size > self.limit:
            self.entries.clear()
            self.bytes = 0
        if size <= self.limit:
            self.entries[name] = hit
            self.bytes += size


class _HitsByConnection:
    """The memo of hits of this thread's connection, emptied when the file's state moved (see ``get_fresh``)."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._local = threading.local()

    def get(self, connection: sqlite3.Connection, state: tuple[int, int]) -> _Hits:
        hits: _Hits | None = getattr(self._local, "hits", None)
        if hits is None or getattr(self._local, "connection", None) is not connection or hits.state != state:
            hits = self._local.hits = _Hits(state, self._limit)
            self._local.connection = connection
        return hits


def _loads(stored: Any) -> Any:
    """A stored value: pickled, or a plain integer (the versions ``bump_versions`` and ``keep_versioned`` write)."""
    return stored if isinstance(stored, int) else pickle.loads(stored)
