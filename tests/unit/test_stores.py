"""The storages the settings name: a Sentinel URL read as ``limits`` reads it, a bad one refused clearly."""

from __future__ import annotations

import pytest

from service.config import ConfigError
from service.stores import _sentinel_primary, make_cache, make_limiter
from service.stores.redis_cache import BatchingRedisCache
from tests.conftest import make_settings


def test_a_sentinel_url_names_the_sentinels_the_service_the_database_and_the_password() -> None:
    client = _sentinel_primary("redis+sentinel://:s%40cret@a:26379,b:26380,c/conduit/2", socket_timeout=0.25)
    pool = client.connection_pool
    sentinels = [s.connection_pool.connection_kwargs for s in pool.sentinel_manager.sentinels]  # type: ignore[attr-defined]

    assert pool.service_name == "conduit"  # type: ignore[attr-defined]
    assert pool.connection_kwargs["db"] == 2 and pool.connection_kwargs["password"] == "s@cret"
    assert pool.connection_kwargs["socket_timeout"] == 0.25
    assert [(s["host"], s["port"]) for s in sentinels] == [("a", 26379), ("b", 26380), ("c", 26379)]
    assert all(s["socket_timeout"] == 0.25 and s["password"] == "s@cret" for s in sentinels)


@pytest.mark.parametrize("url", ["redis+sentinel://a:26379", "redis+sentinel://a:26379/", "redis+sentinel:///conduit"])
def test_a_sentinel_url_without_a_service_or_a_host_is_refused(url: str) -> None:
    with pytest.raises(ConfigError):
        _sentinel_primary(url)


def test_the_cache_and_the_limiter_accept_sentinel_urls_without_connecting(tmp_path: object) -> None:
    sentinels = "redis+sentinel://127.0.0.1:1,127.0.0.1:2"
    settings = make_settings(cache_url=f"{sentinels}/conduit/1", ratelimit_storage_uri=f"{sentinels}/conduit")

    cache = make_cache(settings)
    limiter = make_limiter(settings)

    assert isinstance(cache, BatchingRedisCache) and cache.shared_by_hosts
    assert limiter.storage.use_replicas is False  # type: ignore[attr-defined]  # every count on the primary
