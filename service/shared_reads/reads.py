"""``SharedReads``: look a URL up, keep an answer with what it shows, forget what a write changed.

The one object the layers share the cache through (see the package docstring
for the rules). Its store is a :class:`~service.shared_reads.store.VersionedStore`;
a store that fails is bypassed for ``BACKOFF_SECONDS``. A store every host
shares gets a journal: each write records what it changes in the database,
and ``delivery.Delivery`` brings the cache up to date from it; a host-local
store's bump missed after a commit is owed instead (``owed.OwedBumps``).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from service.config import BACKOFF_SECONDS
from service.json_bodies import encode_json
from service.metrics import NO_METRICS, Metrics
from service.shared_reads import shown, urls
from service.shared_reads.delivery import INTERVAL, DeliveringStore, Delivery
from service.shared_reads.delivery import Journal as JournalReader
from service.shared_reads.owed import KeepOwed, OwedBumps
from service.shared_reads.shown import SharedAnswer
from service.shared_reads.store import VersionedEntry, VersionedStore

logger = logging.getLogger(__name__)

#: How many URLs each process remembers having missed, for ``min_uses``.
_TRACKED_URLS = 10000
#: What a route declares its URL depends on: (URL values, query) → surrogate keys (``Route.cache``).
DependsOn = Callable[[Mapping[str, Any], Mapping[str, str]], Iterable[str]]


class Journal(JournalReader, Protocol):
    """The database's journal of invalidations (``service.queries.journal.Journal``)."""

    def record(self, session: Any, digests: Sequence[str]) -> int:
        """Add a write's row in its transaction (``session``); the row's id."""
        ...


class Lookup(NamedTuple):
    """One shared read's lookup: data the middleware hands the dispatcher (``environ_keys.SHARED_LOOKUP``).

    :param key: the entry's key (path and canonical query).
    :param query: the query as the view reads it (first value of each name).
    :param seq: the write counter when the lookup was made: what a stored answer is made at.
    :param answer: the fresh entry, or None on a miss.
    :param may_store: a GET (a HEAD is answered, never remembered).
    """

    key: bytes
    query: Mapping[str, str]
    seq: int
    answer: SharedAnswer | None
    may_store: bool


class SharedReads:
    """Answers shared by every reader, on a versioned store.

    :param store: where entries and versions live.
    :param key_prefix: prefix of every name in the store.
    :param ttl: seconds an entry may be served.
    :param min_uses: store an answer once this process has missed its URL this
        many times (nginx's ``proxy_cache_min_uses``): a URL asked for once (a
        one-off query string, or a flood of them) costs a lookup but never a store.
    :param owed_path: the host's file of bumps owed after a failure (None: kept in this process).
    :param journal: where writes record what they change, for a store shared by hosts (``delivery``).
    :param delivery_interval: seconds between this process's deliveries of the journal.
    :param metrics: told of each store and invalidation.
    """

    def __init__(
        self,
        store: VersionedStore,
        *,
        key_prefix: str = "conduit",
        ttl: int = 300,
        min_uses: int = 2,
        owed_path: Path | None = None,
        journal: Journal | None = None,
        delivery_interval: float = INTERVAL,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self.store = store
        self.prefix = key_prefix
        self.ttl = ttl
        self.version_ttl = 2 * ttl
        self.min_uses = min_uses
        self.metrics = metrics
        self.seq_key = f"{key_prefix}:seq"
        self._owed = OwedBumps(owed_path)
        self._skip_until = 0.0
        self._misses: dict[bytes, int] = {}  # entry key digest -> misses in this process, oldest first
        self.journal = journal if store.shared_by_hosts else None
        self.delivery: Delivery | None = None
        if self.journal is not None:
            assert isinstance(store, DeliveringStore), "a store shared by hosts delivers the journal"
            self.delivery = Delivery(
                self.journal,
                store,
                counter=self.seq_key,
                version_name=self._version_name,
                prefix=key_prefix,
                version_timeout=self.version_ttl,
                window=ttl,
                clock_seed=_clock_seed,
                interval=delivery_interval,
                metrics=metrics,
            )

    def lookup(self, environ: Mapping[str, Any], reads: Container[str]) -> Lookup | None:
        """The lookup of the request's URL; None when the store must not be used now (down, or owed a bump).

        :param reads: the query parameters the route reads: the entry's key is the path and those alone.
        """
        query = {name: value for name, value in urls.first_values(environ).items() if name in reads}
        key = urls.entry_key(environ.get("PATH_INFO", ""), query)
        delivery = self.delivery
        if delivery is not None:
            if not delivery.fresh():
                return None
        elif self._owed.pending() and not self._deliver_owed():
            return None
        found = self._safely(self.store.get_fresh, self.seq_key, self._entry_name(key))
        if not found or (delivery is not None and not delivery.fresh()):  # a reconnect on the way: another server?
            return None
        seq, stored = found
        if not isinstance(seq, int):
            seq = self._seed()
            if seq is None:
                return None
        may_store = environ.get("REQUEST_METHOD") == "GET"
        return Lookup(key, query, seq, SharedAnswer.from_stored(stored), may_store)

    def keep(self, lookup: Lookup, depends_on: Iterable[str], data: Any, route: str) -> bytes:
        """The body of a missed read for its reader, kept for everyone when the URL is worth it.

        :param depends_on: the surrogate keys its route declares for its URL.
        :param data: the reply schema's dump (the viewer's flags are cleared in it).
        :param route: the route's template, for the metrics.
        """
        found = shown.shown(data) if lookup.may_store and self._worth_storing(lookup.key) else None
        if found is None:
            return encode_json(data)
        versions = tuple(sorted({self.version_key(k) for k in (*depends_on, *found.keys)}))
        entry = VersionedEntry(
            self._entry_name(lookup.key), tuple(found.shared), self.ttl, lookup.seq, versions, self.version_ttl
        )
        self._safely(self.store.keep_versioned, self.seq_key, entry)
        self.metrics.cache_store(route)
        return found.body

    def before_commit(self, changed: frozenset[str], session: Any) -> int | None:
        """Record what a write is about to commit in the journal, in its transaction, if hosts share the store.

        :returns: the journal row's id (for :meth:`after_commit`), or None.
        """
        if self.journal is None or not changed:
            return None
        return self.journal.record(session, self._digests(changed))

    def after_commit(self, changed: frozenset[str], row_id: int | None = None) -> bool:
        """Bump what a write committed. If the store cannot be reached: a journaled write is delivered by
        whichever host reaches the store first; a host-local store's bump is owed.

        :param row_id: the write's journal row (:meth:`before_commit`).
        :returns: whether the bump reached the store.
        """
        if not changed:
            return True
        self.metrics.cache_invalidations(len(changed))
        if self.delivery is not None and row_id is not None:
            if time.monotonic() < self._skip_until:
                return False  # backing off: the journal has it
            if self.delivery.deliver_row(row_id, self._digests(changed)):
                return True
            self._skip_until = time.monotonic() + BACKOFF_SECONDS
            return False
        names = self._names(changed)
        if self._bump(names):
            return True
        self._owed.add(names)
        logger.warning("response cache unreachable: %d invalidations owed until it is back", len(names))
        return False

    def owes(self) -> bool:
        """Whether this host owes the store a bump it could not deliver."""
        return self._owed.pending()

    def probe(self) -> bool:
        """Whether the store accepts a write now (for readiness)."""
        return self.store.set(f"{self.prefix}:probe", "1", 10) is not False

    def version_key(self, surrogate: str) -> str:
        """Where the version of a surrogate key is kept: a fixed-size name, whatever the key's length.

        64 bits: two keys that shared a name would only forget each other's answers too, never keep one.
        """
        return self._version_name(_digest(surrogate))

    def _version_name(self, digest: str) -> str:
        return f"{self.prefix}:v:{digest}"

    def _digests(self, changed: Iterable[str]) -> list[str]:
        return sorted({_digest(k) for k in changed})

    def _names(self, changed: Iterable[str]) -> list[str]:
        return sorted({self.version_key(k) for k in changed})

    def _worth_storing(self, key: bytes) -> bool:
        """Count a miss of ``key``; whether it has now been missed ``min_uses`` times here."""
        if self.min_uses <= 1:
            return True
        misses = self._misses.pop(key, 0) + 1
        self._misses[key] = misses  # re-inserted last: the most recently seen are kept
        if len(self._misses) > _TRACKED_URLS:
            del self._misses[next(iter(self._misses))]
        return misses >= self.min_uses

    def _bump(self, names: list[str]) -> bool:
        try:
            self.store.bump_versions(self.seq_key, names, _clock_seed(), self.version_ttl)
            return True
        except Exception:
            self._skip_until = time.monotonic() + BACKOFF_SECONDS
            return False

    def _deliver_owed(self) -> bool:
        """Bump what this host owes; whether the store may be read again."""
        if time.monotonic() < self._skip_until:
            return False
        with self._owed.taken() as names:
            if names and not self._bump(names):
                raise KeepOwed
        delivered = not self._owed.pending()
        if delivered:
            logger.warning("response cache back: owed invalidations delivered")
        return delivered

    def _seed(self) -> int | None:
        """Start a lost (or first) counter past any value it had."""
        self._safely(self.store.add, self.seq_key, _clock_seed(), 0)
        seq = self._safely(self.store.get, self.seq_key)
        return seq if isinstance(seq, int) else None

    def _entry_name(self, key: bytes) -> str:
        # ``a`` (an answer with its flags' places): entries of the earlier shape were ``e``, so releases side by
        # side on one store never read each other's entries (they share the counter and versions, so bumps hold).
        return f"{self.prefix}:a:{key.hex()}"

    def _safely(self, operation: Any, *args: Any) -> Any:
        """Run a store operation; on failure, log, back off, and act as a miss."""
        if time.monotonic() < self._skip_until:
            return None
        try:
            return operation(*args)
        except Exception:
            self._skip_until = time.monotonic() + BACKOFF_SECONDS
            logger.warning("response cache unavailable; bypassing it for %.0fs", BACKOFF_SECONDS)
            return None


def _digest(surrogate: str) -> str:
    """A surrogate key's fixed-size name (``SharedReads.version_key``)."""
    return hashlib.blake2b(surrogate.encode(), digest_size=8).hexdigest()


def _clock_seed() -> int:
    """A starting value for a lost counter: the clock in microseconds."""
    return time.time_ns() // 1000
