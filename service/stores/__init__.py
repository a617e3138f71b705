"""The shared storages the settings name: the response cache and the rate-limit counters.

Both are built here (and nowhere else), so ``create_app``, the readiness probe
and ``conduit check`` all talk to the same storages the same way. Nothing is
connected until first use, so building them before gunicorn forks is safe.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
from cachelib import BaseCache, FileSystemCache, NullCache, SimpleCache
from limits.storage import storage_from_string
from limits.strategies import STRATEGIES, RateLimiter
from redis.sentinel import Sentinel

from service.config import ConfigError, Settings
from service.metrics import NO_METRICS, Metrics
from service.shared_reads.owed import OWED_FILE
from service.shared_reads.reads import Journal, SharedReads
from service.shared_reads.store import VersionedStore, versioned
from service.stores.redis_cache import BatchingRedisCache, Reconnects
from service.stores.sqlite_cache import SQLiteCache
from service.stores.sqlite_counters import SQLiteCounterStorage

#: Seconds to wait for Redis (cache or counters) before treating it as down.
NETWORK_TIMEOUT = 0.25


def make_cache(settings: Settings) -> BaseCache:
    """The cache named by ``settings.cache_url``.

    ``sqlitefile`` (default): a SQLite file in the instance folder, shared by
    the host's workers; ``filesystem``: cachelib's file-per-entry cache there
    (slower on misses, see bench/README.md); ``redis://...``: shared by every
    host; ``redis+sentinel://host:port,host:port/service[/db]``: the same, on
    the primary Redis Sentinel names (redis-py's ``Sentinel.master_for``: a
    failover moves the connections to the new primary); ``simple``: one process
    only (tests); ``null``: nothing is cached.
    """
    url = settings.cache_url
    if url == "null":
        return NullCache()
    if url == "sqlitefile":
        return SQLiteCache(
            settings.instance_path / "cache.db",
            default_timeout=settings.cache_ttl,
            threshold=settings.cache_threshold,
            max_bytes=settings.cache_max_bytes,
        )
    if url == "filesystem":
        return FileSystemCache(
            str(settings.instance_path / "cache"),
            default_timeout=settings.cache_ttl,
            threshold=settings.cache_threshold,
        )
    if url == "simple":
        return SimpleCache(default_timeout=settings.cache_ttl)
    if url.startswith(("redis://", "rediss://", "unix://", "redis+sentinel://")):
        reconnects = Reconnects()
        timeouts = {"socket_connect_timeout": NETWORK_TIMEOUT, "socket_timeout": NETWORK_TIMEOUT}
        if url.startswith("redis+sentinel://"):
            client = _sentinel_primary(url, redis_connect_func=reconnects, **timeouts)
        else:
            client = redis.Redis.from_url(url, redis_connect_func=reconnects, **timeouts)
        return BatchingRedisCache(
            client,
            key_prefix=f"{settings.cache_key_prefix}:",
            default_timeout=settings.cache_ttl,
            reconnects=reconnects,
        )
    raise ConfigError("CONDUIT_CACHE_URL must be sqlitefile, filesystem, redis://, redis+sentinel://, simple or null")


def _sentinel_primary(url: str, **options: Any) -> redis.Redis:
    """The primary named by ``redis+sentinel://[[user]:password@]host:port[,host:port...]/service[/db]``."""
    parts = urlsplit(url)
    auth, _, locations = parts.netloc.rpartition("@")
    sentinels = []
    for location in locations.split(","):
        host, _, port = location.rpartition(":") if ":" in location else (location, "", "26379")
        sentinels.append((host, int(port or 26379)))
    service, _, db = parts.path.strip("/").partition("/")
    if not service or not all(host for host, _ in sentinels):
        raise ConfigError("CONDUIT_CACHE_URL: redis+sentinel://host:port[,host:port...]/service[/db]")
    user, _, password = auth.partition(":") if auth else ("", "", "")
    credentials = {"username": unquote(user) or None, "password": unquote(password) or None}
    timeouts = {name: options[name] for name in ("socket_connect_timeout", "socket_timeout") if name in options}
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        sentinels, sentinel_kwargs={**timeouts, **credentials}, **credentials, **timeouts
    )
    primary: redis.Redis = sentinel.master_for(service, db=int(db or 0), **options)  # type: ignore[no-untyped-call]
    return primary


def make_shared_reads(
    settings: Settings,
    cache: BaseCache | VersionedStore,
    metrics: Metrics = NO_METRICS,
    journal: Journal | None = None,
) -> SharedReads:
    """The shared reads on ``cache`` (``make_cache``), with the host's file of owed bumps.

    :param journal: where writes record what they change, when the cache is shared by hosts.
    """
    return SharedReads(
        versioned(cache),
        key_prefix=settings.cache_key_prefix,
        ttl=settings.cache_ttl,
        min_uses=settings.cache_min_uses,
        owed_path=settings.instance_path / OWED_FILE,
        journal=journal,
        metrics=metrics,
    )


def readiness_probes(
    shared: SharedReads, limiter: RateLimiter | None, settings: Settings
) -> tuple[dict[str, Callable[[], bool]], frozenset[str]]:
    """What readiness reports on besides the database, and which of it the host cannot serve without.

    :returns: name → check (the cache accepts a write; the counters answer), and
        the names that are required: the counters when the limiter fails closed.
    """
    probes: dict[str, Callable[[], bool]] = {"cache": shared.probe}
    if limiter is None:
        return probes, frozenset()
    probes["rate_limit_storage"] = limiter.storage.check
    return probes, frozenset() if settings.ratelimit_swallow_errors else frozenset({"rate_limit_storage"})


def make_limiter(settings: Settings) -> RateLimiter:
    """The configured strategy on the configured counter storage."""
    uri = settings.ratelimit_storage_uri
    try:
        if uri.startswith("sqlitefile://"):
            return STRATEGIES[settings.ratelimit_strategy](SQLiteCounterStorage(uri, timeout=5.0))
        options: dict[str, Any] = {}
        if uri.startswith(("redis", "rediss")):
            options = {"socket_connect_timeout": NETWORK_TIMEOUT, "socket_timeout": NETWORK_TIMEOUT}
        if uri.startswith("redis+sentinel"):
            # Every count on the primary: a replica read could be behind it, and a limit must be exact.
            options.update(use_replicas=False, sentinel_kwargs=dict(options))
        return STRATEGIES[settings.ratelimit_strategy](storage_from_string(uri, **options))
    except (ValueError, NotImplementedError, TypeError) as exc:
        raise ConfigError(f"CONDUIT_RATELIMIT_STORAGE_URI/STRATEGY cannot be used: {exc}") from None
