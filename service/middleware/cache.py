"""The response cache: what is cached, for whom, and what forgets it, in one place.

**What.** The ``200`` answer to a ``GET`` of a route that declares ``cache=``
in the route table, as an anonymous reader gets it, keyed by the path and the
query as the view reads it (werkzeug's own parsing; the first value of each
parameter, sorted by name). A ``HEAD`` is answered from the cache but never
stores. An answer is stored once this process has missed its URL
``min_uses`` times.

**For whom.** Anyone. An anonymous reader gets the entry as it is. A signed-in
reader's request goes on to the dispatcher with the entry in hand
(:data:`environ_keys.SHARED_ANSWER`); the dispatcher checks the token and reads the
viewer's ``favorited``/``following`` flags with one small statement, and
:func:`personalize` writes them in. A signed-in miss hands its answer back
(:data:`environ_keys.SHARED_STORE`) and the flags are cleared before it is stored.

**What forgets it.** Every entry records the surrogate keys of what it shows
(``service.surrogates``): those its route declares for its URL (a list's
filters, an article's slug) and those of the articles and profiles in its
body. A write's ops record the keys of what they changed; once the
transaction has committed, the dispatcher hands them over
(:data:`environ_keys.CHANGED`) and they are *bumped* before the response leaves.
Nothing else is forgotten: a login, a follow or a comment on another article
leaves an entry alone.

**Why an entry is never stale.** The store holds a write counter (``seq``)
and, per surrogate key, the counter's value when it was last bumped. A reader
reads ``seq`` (with its lookup, before it computes anything) and stores its
answer as made at that ``seq``; an entry is served only while none of its keys
has been bumped past it. A write bumps after its commit, so any reader that
might have read the database before the commit read ``seq`` before the bump
too, and its entry is dead on arrival; a reader that started after the bump
saw the write. Counter and keys change in one atomic step of the store (a
Lua script on Redis, a transaction on SQLite), so two writers cannot leave a
key behind. A key missing from the store (evicted, or never stored) is no
version: an entry depending on it is dead, and a reader that stores a new
entry recreates the key at the counter's value *when it stores* (Redis and
SQLite; past every bump so far, so an entry computed across a write whose
version was evicted meanwhile is dead on arrival too; the generic path of
other caches uses the value it read). A lost counter is started again from the clock in microseconds,
past any value it had (writes never come a million a second).

How each store applies that rule, in one lookup per hit: Redis keeps an
entry's version names beside it and a Lua script returns the entry only if
none moved past it; the host-local SQLite store turns it around, each bump
deleting the entries that show what it bumps, and an entry computed across a
bump refused when it is stored (both are transactions, so one waits for the
other). Any other cachelib cache (``simple``, in tests) reads the versions
with a second lookup.

**A cache that fails.** Reads bypass it for a few seconds. A cache shared by
hosts (Redis) is also bumped *before* a write commits (:data:`environ_keys.FORGET_FIRST`):
if that fails, the write is refused with 503 and nothing changes, so a host cut
off from Redis can never leave the other hosts serving what it changed. A bump
that fails after the commit (the link lost in the millisecond between the two)
still happened, so it is owed: its keys are appended to a file of the host (the
instance folder), and no worker of the host reads the cache again until the
owed keys have been bumped. What remains, then: other hosts may serve an
answer computed in that millisecond, after the first bump and before the
commit, until that host delivers (when its link comes back) or the entry
expires (``CONDUIT_CACHE_TTL``). A host-local cache needs no first bump: only
that host's workers read it, and they stop reading it while a bump is owed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qsl

import werkzeug.urls  # noqa: F401  (registers the "werkzeug.url_quote" decoding error handler)
from cachelib import BaseCache
from werkzeug.http import generate_etag

from service import environ_keys, surrogates
from service.conditional_read import ConditionalRead
from service.json_bodies import encode_json
from service.metrics import NO_METRICS, Metrics
from service.middleware import BACKOFF_SECONDS
from service.router import Route
from service.stores.versioned import VersionedEntry

logger = logging.getLogger(__name__)

#: The host's file of owed bumps, in the instance folder.
OWED_FILE = "owed-invalidations"
#: How many URLs each process remembers having missed, for ``min_uses``.
_TRACKED_URLS = 10000

#: The read of one shared route: (route, URL values) → the keys its URL depends on.
SharedRead = tuple[Route, Mapping[str, Any]]


class ResponseCacheMiddleware:
    """Serve repeated reads from a shared cache; forget exactly what a write changed.

    :param shared_read: the request's route and URL values when the route
        declares ``cache=`` (``Router.shared_read``), else None.
    :param cache: a cachelib cache shared by every worker (SQLite file, Redis),
        or NullCache to cache nothing.
    :param ttl: seconds an entry may be served.
    :param owed_path: the host's file of bumps owed after a failure (None: kept in this process).
    :param metrics: told of each store and invalidation (each lookup's outcome is
        left in the environ, and counted with the request).
    :param min_uses: store an answer once this process has missed its URL this
        many times (nginx's ``proxy_cache_min_uses``): a URL asked for once (a
        one-off query string, or a flood of them) costs a lookup but never a store.
    """

    def __init__(
        self,
        app: Any,
        shared_read: Callable[[dict[str, Any]], SharedRead | None],
        cache: BaseCache,
        ttl: int,
        key_prefix: str = "conduit",
        min_uses: int = 2,
        owed_path: Path | None = None,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.shared_read = shared_read
        self.store = VersionedStore(cache, key_prefix, owed_path, ttl)
        self.ttl = ttl
        self.min_uses = min_uses
        self._misses: dict[bytes, int] = {}  # entry key digest -> misses in this process, oldest first

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        if method in ("GET", "HEAD"):
            found = self.shared_read(environ)
            if found is not None:
                return self._read(environ, start_response, method, *found)
            return self.app(environ, start_response)  # type: ignore[no-any-return]
        environ[environ_keys.FORGET_FIRST] = self.store.forget_before_commit
        body = self.app(environ, start_response)
        # The dispatcher has committed and started its response by now.
        changed = environ.pop(environ_keys.CHANGED, None)
        if changed:
            self.store.forget(changed)
            self.metrics.cache_invalidations(len(changed))
        return body  # type: ignore[no-any-return]

    def _read(
        self, environ: dict[str, Any], start_response: Any, method: str, route: Route, values: Mapping[str, Any]
    ) -> Iterable[bytes]:
        query = _first_values(environ)
        key = _entry_key(environ.get("PATH_INFO", ""), query)
        seq, stored = self.store.fetch(key)
        if seq is None:  # the cache is down, or owed a bump (or off): answer without it
            return self.app(environ, start_response)  # type: ignore[no-any-return]
        outcome = environ[environ_keys.CACHE_OUTCOME] = "hit" if stored is not None else "miss"

        def start_with_outcome(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, [*headers, ("X-Cache", outcome)], exc_info)

        signed_in = bool(environ.get("HTTP_AUTHORIZATION"))
        if stored is not None and not signed_in:
            return stored(environ, start_with_outcome)
        if stored is not None:
            environ[environ_keys.SHARED_ANSWER] = stored.body  # the dispatcher adds the viewer's flags
        else:
            environ[environ_keys.SHARED_WANTED] = True
        answer = self.app(environ, start_with_outcome)
        handed = environ.pop(environ_keys.SHARED_STORE, None)
        # Only a GET stores (a HEAD is answered, never remembered).
        if handed is not None and method == "GET" and self._worth_storing(key):
            shared, data = _shareable(handed)
            declared = route.cache(values, query) if route.cache is not None else ()
            self.store.keep(key, seq, {*declared, *surrogates.shown_in(data)}, shared)
            self.metrics.cache_store(route.template)
        return answer  # type: ignore[no-any-return]

    def _worth_storing(self, key: bytes) -> bool:
        """Count a miss of ``key``; whether it has now been missed ``min_uses`` times here."""
        if self.min_uses <= 1:
            return True
        misses = self._misses.pop(key, 0) + 1
        self._misses[key] = misses  # re-inserted last: the most recently seen are kept
        if len(self._misses) > _TRACKED_URLS:
            del self._misses[next(iter(self._misses))]
        return misses >= self.min_uses


class VersionedStore:
    """Entries and the versions of their surrogate keys, on a cachelib cache.

    Store layout (under ``key_prefix``): ``:seq`` the write counter (never
    expires); ``:v:<digest>`` the counter's value when a surrogate key was last
    bumped, kept twice as long as an entry (a version that expires is missing,
    which is safe); ``:e:<digest>`` an entry ``(seq it was made at, version key
    names, body, ETag)``, kept ``ttl`` seconds. Where the store keeps the names
    itself (``keep_versioned``), the entry holds none: Redis keeps them beside
    it (``:e:<digest>:deps``) and a Lua script checks them on the lookup; the
    SQLite store has each bump delete the entries that show what it bumps, and
    refuses to store an entry computed across a bump. Stores that can
    (``stores.SQLiteCache``, ``stores.BatchingRedisCache``) bump atomically
    across processes (``bump_versions``), keep an entry's version names
    themselves (``keep_versioned``) and answer a lookup with a fresh entry or
    none (``get_fresh``: one statement, or one Redis round trip); any other
    cache is checked with a second lookup and bumped under a lock of this
    process (``simple``, tests).
    """

    def __init__(self, cache: BaseCache, key_prefix: str, owed_path: Path | None, ttl: int) -> None:
        self.cache = cache
        self.prefix = key_prefix
        self.ttl = ttl
        self.version_ttl = 2 * ttl
        self.seq_key = f"{key_prefix}:seq"
        self._owed = OwedBumps(owed_path)
        self._skip_until = 0.0
        # A store that can (the Redis and SQLite stores) keeps an entry's versions itself: one lookup a hit.
        self._get_fresh = getattr(cache, "get_fresh", None)
        self._keep_versioned = getattr(cache, "keep_versioned", None)
        #: Whether other hosts read this cache too (Redis): then a write bumps before it commits as well.
        self.shared_by_hosts: bool = getattr(cache, "shared_by_hosts", False)
        self._lock = threading.Lock()

    def version_key(self, surrogate: str) -> str:
        """Where the version of a surrogate key is kept: a fixed-size name, whatever the key's length.

        64 bits: two keys that shared a name would only forget each other's answers too, never keep one.
        """
        return f"{self.prefix}:v:{hashlib.blake2b(surrogate.encode(), digest_size=8).hexdigest()}"

    def fetch(self, key: bytes) -> tuple[int | None, ConditionalRead | None]:
        """The current ``seq`` and, if it is still fresh, the answer stored under ``key``.

        ``seq`` is None when the cache must not be used now (down, or owed a bump).
        """
        if self._owed.pending() and not self._deliver_owed():
            return None, None
        if self._get_fresh is not None:
            found = self._safely(self._get_fresh, self.seq_key, self._entry_name(key))
        else:
            found = self._safely(self.cache.get_many, self.seq_key, self._entry_name(key))
        if not found:
            return None, None
        seq, entry = found
        if not isinstance(seq, int):
            seq = self._seed()
            if seq is None:
                return None, None
        if not (isinstance(entry, tuple) and len(entry) == 4):
            return seq, None
        made_at, version_keys, body, etag = entry
        if self._get_fresh is None:  # checked here, with a second lookup
            versions = self._safely(self.cache.get_many, *version_keys) if version_keys else []
            if versions is None or not all(isinstance(v, int) and v <= made_at for v in versions):
                return seq, None
        return seq, ConditionalRead(body, etag)

    def keep(self, key: bytes, seq: int, surrogate_keys: Iterable[str], answer: ConditionalRead) -> None:
        """Store ``answer`` as made at ``seq``, depending on ``surrogate_keys``.

        Missing version keys are created at ``seq``: past every bump before this
        reader began, so an older entry that depended on an evicted key stays dead.
        """
        version_keys = tuple(sorted(self.version_key(k) for k in surrogate_keys))
        if self._keep_versioned is not None:  # the store keeps the names itself and answers only fresh entries
            value = (seq, (), answer.body, answer.etag)
            entry = VersionedEntry(self._entry_name(key), value, self.ttl, seq, version_keys, self.version_ttl)
            self._safely(self._keep_versioned, self.seq_key, entry)
            return
        if version_keys and self._safely(self._add_each, dict.fromkeys(version_keys, seq), self.version_ttl) is None:
            return
        self._safely(self.cache.set, self._entry_name(key), (seq, version_keys, answer.body, answer.etag), self.ttl)

    def forget(self, surrogate_keys: Iterable[str]) -> bool:
        """Bump ``surrogate_keys``; if the cache cannot be reached, owe the bump (see the module docstring).

        :returns: whether the bump reached the cache.
        """
        names = sorted({self.version_key(k) for k in surrogate_keys})
        if not names or self._bump(names):
            return True
        self._owed.add(names)
        logger.warning("response cache unreachable: %d invalidations owed until it is back", len(names))
        return False

    def forget_before_commit(self, surrogate_keys: Iterable[str]) -> bool:
        """Bump ``surrogate_keys`` of a write about to commit, if the cache is shared by hosts.

        :returns: whether the write may commit: false when a shared cache cannot
            be reached now (it is backing off, or a bump this host owes cannot
            be delivered), so that no other host keeps serving what it changes.
        """
        if not self.shared_by_hosts:
            return True
        names = sorted({self.version_key(k) for k in surrogate_keys})
        if not names:
            return True
        if time.monotonic() < self._skip_until or (self._owed.pending() and not self._deliver_owed()):
            return False
        return self._bump(names)

    def _bump(self, names: list[str]) -> bool:
        bump = getattr(self.cache, "bump_versions", None)
        try:
            if bump is not None:
                bump(self.seq_key, names, _clock_seed(), self.version_ttl)
            else:
                with self._lock:
                    self.cache.add(self.seq_key, _clock_seed(), 0)
                    seq = self.cache.inc(self.seq_key)
                    self.cache.set_many(dict.fromkeys(names, seq), self.version_ttl)
            return True
        except Exception:
            self._skip_until = time.monotonic() + BACKOFF_SECONDS
            return False

    def _deliver_owed(self) -> bool:
        """Bump what this host owes; whether the cache may be read again."""
        if time.monotonic() < self._skip_until:
            return False
        with self._owed.taken() as names:
            if names and not self._bump(names):
                raise _KeepOwed
        delivered = not self._owed.pending()
        if delivered:
            logger.warning("response cache back: owed invalidations delivered")
        return delivered

    def _seed(self) -> int | None:
        """Start a lost (or first) counter past any value it had."""
        self._safely(self.cache.add, self.seq_key, _clock_seed(), 0)
        seq = self._safely(self.cache.get, self.seq_key)
        return seq if isinstance(seq, int) else None

    def _add_each(self, versions: Mapping[str, int], timeout: int) -> bool:
        for name, value in versions.items():
            self.cache.add(name, value, timeout)
        return True

    def _entry_name(self, key: bytes) -> str:
        return f"{self.prefix}:e:{key.hex()}"

    def _safely(self, operation: Any, *args: Any) -> Any:
        """Run a cache operation; on failure, log, back off, and act as a miss."""
        if time.monotonic() < self._skip_until:
            return None
        try:
            return operation(*args)
        except Exception:
            self._skip_until = time.monotonic() + BACKOFF_SECONDS
            logger.warning("response cache unavailable; bypassing it for %.0fs", BACKOFF_SECONDS)
            return None


class _KeepOwed(Exception):
    """Raised inside ``OwedBumps.taken`` to keep what was taken."""


class OwedBumps:
    """Version keys a write could not bump, kept until they are delivered.

    In a file of the host (one name a line, under an exclusive lock) so that
    every worker of the host sees the debt, even one that did not fail, and a
    restarted worker still owes what its predecessor did; in this process when
    no file is given.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._memory: list[str] = []

    def pending(self) -> bool:
        """Whether anything is owed (a ``stat`` of the file: cheap enough for every read)."""
        if self.path is None:
            return bool(self._memory)
        return self.path.exists()

    def add(self, names: Iterable[str]) -> None:
        if self.path is None:
            self._memory.extend(names)
            return
        with self._locked() as owed:
            owed.write("".join(f"{name}\n" for name in names))

    @contextlib.contextmanager
    def taken(self) -> Iterator[list[str]]:
        """The owed names, forgotten when the block ends without ``_KeepOwed``."""
        if self.path is None:
            names, self._memory = self._memory, []
            try:
                yield names
            except _KeepOwed:
                self._memory = names + self._memory
            return
        with self._locked() as owed:
            owed.seek(0)
            names = sorted(set(owed.read().split()))
            try:
                yield names
            except _KeepOwed:
                return
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)  # still under the lock: nobody appended since the read

    @contextlib.contextmanager
    def _locked(self) -> Iterator[IO[str]]:
        """The file, open and exclusively locked; the one at the path, not one a deliverer just removed."""
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            with open(self.path, "a+") as owed:
                fcntl.flock(owed, fcntl.LOCK_EX)
                try:
                    current = os.stat(self.path).st_ino == os.fstat(owed.fileno()).st_ino
                except FileNotFoundError:
                    current = False
                if current:
                    yield owed
                    return


def personalize(shared: bytes, flags: Callable[[list[str], list[str]], tuple[frozenset[str], frozenset[str]]]) -> bytes:
    """A shared answer with a viewer's flags written in.

    :param flags: (slugs, usernames in the answer) → (the slugs the viewer
        favorited, the usernames the viewer follows).
    """
    data = json.loads(shared)
    holders = _FlagHolders(data)
    favorited, following = flags(holders.slugs(), holders.usernames())
    holders.apply(favorited, following)
    return encode_json(data)


def _shareable(handed: ConditionalRead | bytes) -> tuple[ConditionalRead, Any]:
    """What may be stored from what the dispatcher answered, and its data.

    An anonymous answer as it is (its ETag already computed); a signed-in one with the viewer's flags cleared.
    """
    if isinstance(handed, ConditionalRead):
        return handed, json.loads(handed.body)
    data = json.loads(handed)
    _FlagHolders(data).apply(frozenset(), frozenset())
    body = encode_json(data)
    return ConditionalRead(body, generate_etag(body)), data


class _FlagHolders:
    """The objects of an answer that carry a viewer's flags, found in one walk.

    Articles (``slug`` + ``favorited``) and profiles (``username`` + ``following``),
    at any depth: a list's articles, an article's author, a comment's author.
    """

    def __init__(self, data: Any) -> None:
        self.articles: list[dict[str, Any]] = []
        self.profiles: list[dict[str, Any]] = []
        stack = [data]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                if "favorited" in node and "slug" in node:
                    self.articles.append(node)
                if "following" in node and "username" in node:
                    self.profiles.append(node)
                stack.extend(value for value in node.values() if isinstance(value, dict | list))
            elif isinstance(node, list):
                stack.extend(node)

    def slugs(self) -> list[str]:
        return sorted({article["slug"] for article in self.articles})

    def usernames(self) -> list[str]:
        return sorted({profile["username"] for profile in self.profiles})

    def apply(self, favorited: frozenset[str], following: frozenset[str]) -> None:
        for article in self.articles:
            article["favorited"] = article["slug"] in favorited
        for profile in self.profiles:
            profile["following"] = profile["username"] in following


def _first_values(environ: dict[str, Any]) -> dict[str, str]:
    """The query as the view reads it, the first value of each name.

    Exactly what werkzeug's ``Request.args`` runs (``sansio.request.Request.args``
    in werkzeug 3.1: ``parse_qsl`` of the query string as UTF-8, invalid bytes
    kept percent-encoded), without building a request for it (15 µs a hit);
    ``tests/unit/test_cache.py`` holds the two equal on awkward queries.
    """
    query = environ.get("QUERY_STRING")
    if not query:
        return {}  # most reads: no parsing to do
    first: dict[str, str] = {}
    for name, value in parse_qsl(query.encode("latin1").decode(), keep_blank_values=True, errors="werkzeug.url_quote"):
        first.setdefault(name, value)
    return first


def _entry_key(path: str, query: Mapping[str, str]) -> bytes:
    """A fixed-size digest of the path and the canonical query.

    ``?tag=b&tag=a`` and ``?tag=a&tag=b`` are different answers and different
    keys, while ``?limit=5&tag=a`` and ``?tag=a&limit=5`` share one. Every part
    is prefixed with its length, so no value can pose as another's separator.
    """
    canonical = path.rstrip("/")
    if query:
        canonical += "".join(f"|{len(n)}:{n}{len(v)}:{v}" for n, v in sorted(query.items()))
    return hashlib.blake2b(canonical.encode(errors="surrogatepass"), digest_size=16).digest()


def _clock_seed() -> int:
    """A starting value for a lost counter: the clock in microseconds."""
    return time.time_ns() // 1000
