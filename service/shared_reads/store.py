"""The stores' contract: what the shared reads need of a cache, as a type, and that contract on any cachelib cache.

:class:`VersionedStore` is what ``SharedReads`` talks to. The Redis store
(``stores.BatchingRedisCache``) and the host's SQLite file
(``stores.SQLiteCache``) implement it natively, one lookup a hit; any other
cachelib cache (``simple`` in tests, ``filesystem``, ``null``) gets it from
:class:`OnAnyCache`, which checks an entry's versions with a second lookup
and bumps under a lock of this process.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from cachelib import BaseCache


@dataclass(frozen=True)
class VersionedEntry:
    """An answer to keep only while nothing it shows has changed since its reader began.

    :param key: the entry's name.
    :param value: what is kept.
    :param timeout: seconds it may be kept.
    :param made_at: the write counter's value when its reader began.
    :param versions: the version keys of what it shows (``SharedReads.version_key``).
    :param versions_timeout: seconds a version key created for it is kept.
    """

    key: str
    value: Any
    timeout: int
    made_at: int
    versions: tuple[str, ...]
    versions_timeout: int


@runtime_checkable
class VersionedStore(Protocol):
    """Entries kept with the versions of what they show, and versions bumped atomically across processes.

    The freshness rule (``service.shared_reads``) is: an entry made at counter
    value ``made_at`` is served only while none of its versions is missing or
    past ``made_at``; a bump adds one to the counter and sets its versions to it.
    """

    #: Whether other hosts read this store too (Redis): then a write also bumps before it commits.
    shared_by_hosts: bool

    def get_fresh(self, counter: str, key: str) -> tuple[Any, Any]:
        """``(counter's value, entry)``, the entry only if it is still fresh; raises when the store is down."""
        ...

    def keep_versioned(self, counter: str, entry: VersionedEntry) -> None:
        """Store ``entry`` unless what it shows changed since ``entry.made_at`` (missing versions are created)."""
        ...

    def bump_versions(self, counter: str, names: Iterable[str], seed: int, timeout: int) -> int:
        """Add one to ``counter`` (from ``seed`` when it is missing), set ``names`` to it; the new value."""
        ...

    def add(self, key: str, value: Any, timeout: int | None = None) -> bool:
        """Set ``key`` unless it holds a value (cachelib's ``add``): starts a lost counter."""
        ...

    def get(self, key: str) -> Any:
        """The value of ``key``, or None (cachelib's ``get``)."""
        ...

    def set(self, key: str, value: Any, timeout: int | None = None) -> Any:
        """Store ``value`` under ``key`` (cachelib's ``set``): the readiness probe's write."""
        ...


class OnAnyCache(VersionedStore):
    """:class:`VersionedStore` over any cachelib cache: two lookups a hit, bumps under a lock of this process.

    An entry is kept as ``(made_at, version names, value)``; a missing version
    is created at the value the reader read (``made_at``), which a later bump
    moves past.
    """

    shared_by_hosts = False

    def __init__(self, cache: BaseCache) -> None:
        self.cache = cache
        self._lock = threading.Lock()

    def get_fresh(self, counter: str, key: str) -> tuple[Any, Any]:
        seq, entry = self.cache.get_many(counter, key)
        if not (isinstance(entry, tuple) and len(entry) == 3):
            return seq, None
        made_at, names, value = entry
        versions = self.cache.get_many(*names) if names else []
        if not all(isinstance(version, int) and version <= made_at for version in versions):
            return seq, None
        return seq, value

    def keep_versioned(self, counter: str, entry: VersionedEntry) -> None:
        for name in entry.versions:
            self.cache.add(name, entry.made_at, entry.versions_timeout)
        self.cache.set(entry.key, (entry.made_at, entry.versions, entry.value), entry.timeout)

    def bump_versions(self, counter: str, names: Iterable[str], seed: int, timeout: int) -> int:
        with self._lock:
            self.cache.add(counter, seed, 0)
            value = self.cache.inc(counter)
            self.cache.set_many(dict.fromkeys(names, value), timeout)
        return int(value or 0)

    def add(self, key: str, value: Any, timeout: int | None = None) -> bool:
        return bool(self.cache.add(key, value, timeout))

    def get(self, key: str) -> Any:
        return self.cache.get(key)

    def set(self, key: str, value: Any, timeout: int | None = None) -> Any:
        return self.cache.set(key, value, timeout)


def versioned(cache: BaseCache | VersionedStore) -> VersionedStore:
    """``cache`` as a :class:`VersionedStore`: itself when it is one, else :class:`OnAnyCache` over it."""
    return cache if isinstance(cache, VersionedStore) else OnAnyCache(cache)
