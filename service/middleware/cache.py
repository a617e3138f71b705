"""Response caching with cachelib, as WSGI middleware, never stale after a write.

What is cached: the ``200`` answer to a ``GET`` of a route declared with
``cache=True``, as an anonymous reader gets it (the dispatcher hands it over in
the environ). An anonymous request is answered from the cache directly. A
signed-in request gets the cached answer handed to the dispatcher, which adds
the viewer's ``favorited``/``following`` flags with one small query (so they
are never stale).

Why a write is seen at once by every worker and host: every entry records the
*generation* it was made under, a random value kept in the same shared cache,
and an entry is served only while its generation is the current one. A reader
fetches the generation and the entry together (one round trip) before it
computes an answer, and stores what it computed with the generation it read
(on Redis, with its next lookup: ``stores.redis_cache.BatchingRedisCache``).
Every successful write (2xx to POST, PUT or DELETE) replaces the generation
with a new random value after its transaction committed and before its
response leaves, so no entry from before the write can be served again,
whatever worker or host made it. A lost generation (evicted, cache restarted)
is replaced by a new random one, which equally disowns everything before it.
A cache that fails is bypassed. An entry is ``(generation, body, ETag)``: the
hash is taken once, when the answer is stored, not on every hit.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode

from cachelib import BaseCache
from werkzeug.http import generate_etag

from service.answer import Answer
from service.config import SHARED_ANSWER_KEY, SHARED_STORE_KEY, SHARED_WANTED_KEY

logger = logging.getLogger(__name__)

_WRITES = frozenset({"POST", "PUT", "DELETE", "PATCH"})
#: After a cache failure, leave the cache alone for this many seconds.
_BACKOFF_SECONDS = 2.0
#: How many URLs each process remembers having seen, for ``min_uses``.
_TRACKED_URLS = 10000


class ResponseCacheMiddleware:
    """Serve repeated reads from a shared cache; forget everything on a write.

    :param cacheable: whether a GET is for a route whose answer may be shared.
    :param cache: a cachelib cache shared by every worker (SQLite file, Redis),
        or NullCache to cache nothing.
    :param ttl: seconds an entry may be served.
    :param min_uses: store an answer once this process has missed its URL this
        many times (nginx's ``proxy_cache_min_uses``). With 2, a URL asked for
        once (a one-off query string, or a flood of them) costs a lookup but
        never a store, so it neither pays for writing the entry nor pushes
        useful entries out; a popular URL is stored from its second miss in a
        worker.
    """

    def __init__(
        self,
        app: Any,
        cacheable: Callable[[dict[str, Any]], bool],
        cache: BaseCache,
        ttl: int,
        key_prefix: str = "conduit",
        min_uses: int = 2,
    ) -> None:
        self.app = app
        self.cacheable = cacheable
        self.cache = cache
        self.ttl = ttl
        self.min_uses = min_uses
        self._misses: dict[str, int] = {}  # URL -> misses in this process, oldest first
        self.generation_key = f"{key_prefix}:generation"
        self.prefix = key_prefix
        self._skip_until = 0.0
        # A cache that can (stores.BatchingRedisCache) sends an entry with its next lookup
        # instead of on a round trip of its own.
        self._store = getattr(cache, "set_later", cache.set)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        if method in ("GET", "HEAD") and self.cacheable(environ):
            return self._read(environ, start_response, method)
        if method in _WRITES:
            return self._write(environ, start_response)
        return self.app(environ, start_response)  # type: ignore[no-any-return]

    def _read(self, environ: dict[str, Any], start_response: Any, method: str) -> Iterable[bytes]:
        key = f"{self.prefix}:{environ.get('PATH_INFO', '').rstrip('/')}?{_query_key(environ.get('QUERY_STRING', ''))}"
        generation, stored = self._lookup(key)
        if generation is None:  # the cache is down: answer without it
            return self.app(environ, start_response)  # type: ignore[no-any-return]
        outcome = "hit" if stored is not None else "miss"

        def start_with_outcome(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, [*headers, ("X-Cache", outcome)], exc_info)

        if stored is not None and not environ.get("HTTP_AUTHORIZATION"):
            return stored(environ, start_with_outcome)
        if stored is not None:
            # Signed in: the dispatcher adds the viewer's flags to the shared answer (one small query).
            environ[SHARED_ANSWER_KEY] = stored.body
        else:
            environ[SHARED_WANTED_KEY] = True  # and it hands back what any reader may be answered
        answer = self.app(environ, start_with_outcome)
        shared = environ.pop(SHARED_STORE_KEY, None)
        # Only a GET stores (a HEAD is answered, never remembered).
        if shared is not None and method == "GET" and self._worth_storing(key):
            self._safely(self._store, key, (generation, shared, generate_etag(shared)), self.ttl)
        return answer  # type: ignore[no-any-return]

    def _worth_storing(self, key: str) -> bool:
        """Count a miss of ``key``; whether it has now been missed ``min_uses`` times here."""
        if self.min_uses <= 1:
            return True
        misses = self._misses.pop(key, 0) + 1
        self._misses[key] = misses  # re-inserted last: the most recently seen are kept
        if len(self._misses) > _TRACKED_URLS:
            del self._misses[next(iter(self._misses))]
        return misses >= self.min_uses

    def _lookup(self, key: str) -> tuple[str | None, Answer | None]:
        """The current generation and, if it was made under it, the answer stored for ``key``."""
        found = self._safely(self.cache.get_many, self.generation_key, key)
        if not found:
            return None, None
        generation, entry = found
        if generation is None:
            # Missing (first use, evicted, flushed): start a new generation nobody has used.
            self._safely(self.cache.add, self.generation_key, uuid.uuid4().hex, 0)
            generation, entry = self._safely(self.cache.get, self.generation_key), None
        if not isinstance(generation, str):
            return None, None
        if isinstance(entry, tuple) and len(entry) == 3 and entry[0] == generation:
            return generation, Answer(entry[1], entry[2])
        return generation, None

    def _write(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        statuses: list[str] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            statuses.append(status)
            return start_response(status, headers, exc_info)

        body = self.app(environ, capture)
        # The dispatcher has committed (or rolled back) and started its response by now.
        if statuses and statuses[-1].startswith("2"):
            # Tried even while reads back off: a skipped bump could leave stale entries reachable.
            self._safely(self.cache.set, self.generation_key, uuid.uuid4().hex, 0, force=True)
        return body  # type: ignore[no-any-return]

    def _safely(self, operation: Any, *args: Any, force: bool = False) -> Any:
        """Run a cache operation; on failure, log, back off, and act as a miss."""
        if not force and time.monotonic() < self._skip_until:
            return None
        try:
            return operation(*args)
        except Exception:
            self._skip_until = time.monotonic() + _BACKOFF_SECONDS
            logger.warning("response cache unavailable; bypassing it for %.0fs", _BACKOFF_SECONDS)
            return None


def _query_key(query_string: str) -> str:
    """The query string as the views read it, in a canonical order.

    A view reads the *first* value of each parameter (``MultiDict.get``), so the
    key keeps exactly that one per name, then sorts by name: ``?tag=b&tag=a`` and
    ``?tag=a&tag=b`` are different answers and different keys, while
    ``?limit=5&tag=a`` and ``?tag=a&limit=5`` share one.
    """
    if not query_string:
        return ""  # most reads: no parsing to do
    first: dict[str, str] = {}
    for name, value in parse_qsl(query_string, keep_blank_values=True):
        first.setdefault(name, value)
    return urlencode(sorted(first.items()))
