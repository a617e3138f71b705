"""Response caching with cachelib, as WSGI middleware, never stale after a write.

What is cached: ``200`` answers to ``GET`` requests for article lists, single
articles, comments, profiles and tags, as an anonymous reader gets them. An
anonymous request is answered from the cache directly. A signed-in request gets
the cached answer handed to the dispatcher, which adds the viewer's
``favorited``/``following`` flags with one small query (so they are never stale);
on a miss, the dispatcher hands back its answer with those flags cleared, and
that is what is stored.

Why a write is seen at once by every worker and host: every entry records the
*generation* it was made under, a random value kept in the same shared cache,
and an entry is served only while its generation is the current one. A reader
fetches the generation and the entry together (one round trip) before it
computes an answer, and stores what it computed with the generation it read
(on Redis, with its next lookup: ``redis_cache.BatchingRedisCache``).
Every successful write (2xx to POST, PUT or DELETE) replaces the generation
with a new random value after its transaction committed and before its
response leaves, so no entry from before the write can be served again,
whatever worker or host made it. A lost generation (evicted, cache restarted)
is replaced by a new random one, which equally disowns everything before it.
A cache that fails is bypassed.

Every JSON ``GET`` also gets an ``ETag`` from its body, ``If-None-Match`` is
answered with ``304``, and ``Cache-Control``/``Vary: Authorization`` keep shared
proxies from storing one user's answer for another.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode

import redis
from cachelib import BaseCache, FileSystemCache, NullCache, SimpleCache
from werkzeug.wrappers import Response

from service.config import SHARED_ANSWER_KEY, SHARED_STORE_KEY, SHARED_WANTED_KEY, ConfigError, Settings
from service.middleware.redis_cache import BatchingRedisCache
from service.middleware.sqlite_cache import SQLiteCache

logger = logging.getLogger(__name__)

#: Anonymous GETs worth caching: lists, articles, comments, profiles, tags (not the feed).
_CACHEABLE = re.compile(r"^/api/(?:articles(?:/(?!feed/?$)[^/]+(?:/comments)?)?|profiles/[^/]+|tags)/?$")
_WRITES = frozenset({"POST", "PUT", "DELETE", "PATCH"})
#: After a cache failure, leave the cache alone for this many seconds.
_BACKOFF_SECONDS = 2.0
#: How many URLs each process remembers having seen, for ``min_uses``.
_TRACKED_URLS = 10000


#: Seconds to wait for Redis before treating it as down (the request goes on without the cache).
REDIS_TIMEOUT = 0.25


def make_cache(settings: Settings) -> BaseCache:
    """The cache named by ``settings.cache_url``.

    ``sqlitefile`` (default): a SQLite file in the instance folder, shared by
    the host's workers; ``filesystem``: cachelib's file-per-entry cache there
    (slower on misses, see bench/README.md); ``redis://...``: shared by every
    host; ``simple``: one process only (tests); ``null``: nothing is cached.
    """
    url = settings.cache_url
    if url == "null":
        return NullCache()
    if url == "sqlitefile":
        return SQLiteCache(
            settings.instance_path / "cache.db", default_timeout=settings.cache_ttl, threshold=settings.cache_threshold
        )
    if url == "filesystem":
        return FileSystemCache(
            str(settings.instance_path / "cache"),
            default_timeout=settings.cache_ttl,
            threshold=settings.cache_threshold,
        )
    if url == "simple":
        return SimpleCache(default_timeout=settings.cache_ttl)
    if url.startswith(("redis://", "rediss://", "unix://")):
        client = redis.Redis.from_url(url, socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT)
        return BatchingRedisCache(
            host=client, key_prefix=f"{settings.cache_key_prefix}:", default_timeout=settings.cache_ttl
        )
    raise ConfigError("CONDUIT_CACHE_URL must be sqlitefile, filesystem, redis://..., simple or null")


def probe(cache: BaseCache) -> bool:
    """Whether the cache accepts a write right now."""
    return cache.set("conduit:probe", "1", 10) is not False


class ResponseCacheMiddleware:
    """Serve repeated anonymous reads from a shared cache; validate every JSON GET.

    :param cache: a cachelib cache shared by every worker (FileSystemCache,
        RedisCache), or NullCache to cache nothing (ETags still apply).
    :param ttl: seconds an entry may be served.
    :param min_uses: store an answer once this process has missed its URL this
        many times (nginx's ``proxy_cache_min_uses``). With 2, a URL asked for
        once (a one-off query string, or a flood of them) costs a lookup but
        never a store, so it neither pays for writing the entry nor pushes
        useful entries out; a popular URL is stored from its second miss in a
        worker.
    """

    def __init__(self, app: Any, cache: BaseCache, ttl: int, key_prefix: str = "conduit", min_uses: int = 2) -> None:
        self.app = app
        self.cache = cache
        self.ttl = ttl
        self.min_uses = min_uses
        self._misses: dict[str, int] = {}  # URL -> misses in this process, oldest first
        self.generation_key = f"{key_prefix}:generation"
        self.prefix = key_prefix
        self._skip_until = 0.0
        # A Redis cache sends an entry with the next lookup instead of on a round trip of its own.
        self._store = cache.set_later if isinstance(cache, BatchingRedisCache) else cache.set

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "")
        if not path.startswith("/api/"):
            return self.app(environ, start_response)  # type: ignore[no-any-return]
        if method in ("GET", "HEAD"):
            return self._read(environ, start_response, path)
        if method in _WRITES:
            return self._write(environ, start_response)
        return self.app(environ, start_response)  # type: ignore[no-any-return]

    # -- reads ----------------------------------------------------------------

    def _read(self, environ: dict[str, Any], start_response: Any, path: str) -> Iterable[bytes]:
        anonymous = not environ.get("HTTP_AUTHORIZATION")
        key = generation = None
        cached: Any = None
        if _CACHEABLE.match(path):
            key = f"{self.prefix}:{path.rstrip('/')}?{_query_key(environ.get('QUERY_STRING', ''))}"
            generation, cached = self._lookup(key)
        if cached is not None and anonymous:
            status, headers, body = cached
            response = Response(body, status=status, headers=headers)
            response.headers["X-Cache"] = "hit"
        else:
            if cached is not None:
                # Signed in: the dispatcher adds the viewer's flags to the shared answer (one small query).
                environ[SHARED_ANSWER_KEY] = cached[2]
            elif key and generation and not anonymous:
                environ[SHARED_WANTED_KEY] = True  # and hands back the shared part of what it computes
            response = _buffered_get(self.app, environ)
            if response.mimetype == "application/json":
                self._annotate(response, anonymous)
            if key and generation:
                response.headers["X-Cache"] = "hit" if cached is not None else "miss"
                shared = response.get_data() if anonymous else environ.pop(SHARED_STORE_KEY, None)
                # Only a GET stores (a HEAD is answered, never remembered), and only a whole 200.
                storable = (
                    cached is None
                    and shared is not None
                    and environ.get("REQUEST_METHOD") == "GET"
                    and response.status_code == 200
                    and response.mimetype == "application/json"
                )
                if storable and self._worth_storing(key):
                    stored = response
                    if not anonymous:  # the headers an anonymous reader gets with the shared answer
                        stored = Response(shared, status=200, content_type=response.content_type)
                        self._annotate(stored, anonymous=True)
                    entry = (generation, 200, list(stored.headers.items()), shared)
                    self._safely(self._store, key, entry, self.ttl)
        response.make_conditional(environ)
        return response(environ, start_response)

    @staticmethod
    def _annotate(response: Response, anonymous: bool) -> None:
        if response.status_code != 200:
            return
        response.add_etag()
        # Always revalidate (the ETag makes that cheap); only anonymous answers may be shared.
        response.headers["Cache-Control"] = "no-cache" if anonymous else "private, no-cache"
        response.vary.add("Authorization")

    def _worth_storing(self, key: str) -> bool:
        """Count a miss of ``key``; whether it has now been missed ``min_uses`` times here."""
        if self.min_uses <= 1:
            return True
        misses = self._misses.pop(key, 0) + 1
        self._misses[key] = misses  # re-inserted last: the most recently seen are kept
        if len(self._misses) > _TRACKED_URLS:
            del self._misses[next(iter(self._misses))]
        return misses >= self.min_uses

    def _lookup(self, key: str) -> tuple[str | None, Any]:
        """The current generation and, if it was made under it, the entry for ``key``."""
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
        if isinstance(entry, tuple) and len(entry) == 4 and entry[0] == generation:
            return generation, entry[1:]
        return generation, None

    # -- writes ---------------------------------------------------------------

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

    # -- helpers -----------------------------------------------------

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
    first: dict[str, str] = {}
    for name, value in parse_qsl(query_string, keep_blank_values=True):
        first.setdefault(name, value)
    return urlencode(sorted(first.items()))


def _buffered_get(app: Any, environ: dict[str, Any]) -> Response:
    """Run ``app`` as a GET and collect its whole response.

    A HEAD is computed as the GET it stands for, so its ``Content-Length`` and
    ``ETag`` are the GET's; the body is dropped when the response is sent.
    (werkzeug's ``Response.from_app`` would run it on a *copy* of the environ,
    hiding what inner layers record there, such as the user id for the log.)
    """
    started: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started[:] = [status, headers]
        return lambda data: None

    method = environ.get("REQUEST_METHOD")
    environ["REQUEST_METHOD"] = "GET"
    try:
        chunks = app(environ, start_response)
        try:
            body = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
    finally:
        environ["REQUEST_METHOD"] = method
    return Response(body, status=started[0], headers=started[1])
