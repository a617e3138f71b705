"""The Redis response cache against a real redis-server: deferred stores, one round trip per read."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis

from service.shared_reads.store import VersionedEntry
from service.stores.redis_cache import BatchingRedisCache
from tests.integration.servers import redis_server


@pytest.fixture
def client(tmp_path: Path) -> Iterator[redis.Redis]:
    with redis_server(tmp_path) as node:
        yield redis.Redis.from_url(node.url)


class CountingClient:
    """Counts the round trips a Redis client makes (each command or pipeline execution)."""

    def __init__(self, client: redis.Redis) -> None:
        self.client, self.trips = client, 0

    def __getattr__(self, name: str) -> object:
        attribute = getattr(self.client, name)
        if name == "pipeline":
            return lambda **options: CountingPipeline(self, self.client.pipeline(**options))
        if callable(attribute):

            def call(*args: object, **kwargs: object) -> object:
                self.trips += 1
                return attribute(*args, **kwargs)

            return call
        return attribute


class CountingPipeline:
    def __init__(self, owner: CountingClient, pipe: object) -> None:
        self.owner, self.pipe = owner, pipe

    def __getattr__(self, name: str) -> object:
        return getattr(self.pipe, name)

    def execute(self) -> list[object]:
        self.owner.trips += 1
        return self.pipe.execute()  # type: ignore[attr-defined, no-any-return]


def test_a_deferred_entry_is_stored_with_the_next_read_in_the_same_round_trip(client: redis.Redis) -> None:
    counting = CountingClient(client)
    cache = BatchingRedisCache(counting, key_prefix="t:", default_timeout=60)

    cache.set_later("entry", ("gen", 200, [], b"body"))
    assert client.get("t:entry") is None and counting.trips == 0  # nothing sent yet

    assert cache.get_many("entry", "other") == [("gen", 200, [], b"body"), None]
    assert counting.trips == 1
    assert 0 < client.ttl("t:entry") <= 60


def test_another_process_sees_the_entry_once_it_was_sent(client: redis.Redis) -> None:
    writer = BatchingRedisCache(client, key_prefix="t:")
    reader = BatchingRedisCache(redis.Redis(connection_pool=client.connection_pool), key_prefix="t:")

    writer.set_later("entry", "value")
    assert reader.get_many("entry") == [None]
    writer.get_many("anything")

    assert reader.get_many("entry") == ["value"]


def test_entries_without_a_timeout_never_expire_and_the_queue_is_bounded(client: redis.Redis) -> None:
    cache = BatchingRedisCache(client, key_prefix="t:", max_pending=2)

    for n in range(3):
        cache.set_later(f"k{n}", n, timeout=0)
    cache.get_many("k0")

    assert client.ttl("t:k2") == -1  # stored, with no expiry
    assert client.exists("t:k0") == 0  # dropped: only the newest two waited


def test_a_failed_round_trip_raises_so_the_middleware_can_bypass_the_cache(tmp_path: Path) -> None:
    with redis_server(tmp_path) as node:
        cache = BatchingRedisCache(
            redis.Redis.from_url(node.url, socket_timeout=0.25, socket_connect_timeout=0.25), key_prefix="t:"
        )
        cache.set_later("k", "v")
        node.stop()

        with pytest.raises(redis.RedisError):
            cache.get_many("k")


def test_bumps_from_many_threads_leave_every_key_at_the_newest_counter(client: redis.Redis) -> None:
    cache = BatchingRedisCache(client, key_prefix="t:")

    with ThreadPoolExecutor(8) as pool:
        values = list(pool.map(lambda _: cache.bump_versions("seq", ["v:a", "v:b"], 1000, 60), range(200)))

    assert sorted(values) == list(range(1001, 1201))  # one step each, from the seed, none lost
    assert cache.get_many("seq", "v:a", "v:b") == [1200, 1200, 1200]
    assert 0 < client.ttl("t:v:a") <= 60 and client.ttl("t:seq") == -1


def test_kept_versions_never_overwrite_a_bumped_one(client: redis.Redis) -> None:
    cache = BatchingRedisCache(client, key_prefix="t:")
    cache.bump_versions("seq", ["v:a"], 0, 0)

    cache.keep_versioned("seq", VersionedEntry("e", "value", 60, 0, ("v:a", "v:b"), 120))
    cache.get_many("seq")  # sends what was queued

    assert cache.get_many("v:a", "v:b") == [1, 1]  # v:b created at the counter's value, not the entry's
    assert cache.get_fresh("seq", "e") == (1, None)  # v:a moved past the entry


def test_a_hit_is_one_round_trip_and_a_bumped_version_makes_it_a_miss(
    client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.shared_reads.reads import SharedReads

    sent = [0]
    send = redis.connection.Connection.send_packed_command

    def counting(self: object, *args: object, **kwargs: object) -> None:
        sent[0] += 1  # one send per command or pipeline: a round trip
        send(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(redis.connection.Connection, "send_packed_command", counting)
    shared = SharedReads(BatchingRedisCache(client, key_prefix="t:"), ttl=60, min_uses=1)
    get = {"REQUEST_METHOD": "GET", "PATH_INFO": "/api/articles/a"}
    lookup = shared.lookup(get, ())
    assert lookup is not None
    article = {"slug": "a", "favorited": False, "author": {"username": "jake", "following": False}}
    shared.keep(lookup, (), {"article": article}, "/api/articles/{slug}")
    shared.lookup(get, ())  # sends the queued stores and reads, together

    before = sent[0]
    hit = shared.lookup(get, ())
    trips_for_a_hit = sent[0] - before
    shared.after_commit(frozenset({"profile:jake"}))
    after = shared.lookup(get, ())

    assert hit is not None and hit.answer is not None and b'"slug":"a"' in hit.answer.body
    assert trips_for_a_hit == 1
    assert after is not None and after.answer is None


def test_an_entry_computed_across_a_bump_whose_version_was_evicted_is_never_fresh(client: redis.Redis) -> None:
    cache = BatchingRedisCache(client, key_prefix="t:")
    made_at = cache.bump_versions("seq", ["v:z"], 0, 0)  # a reader reads the counter (1), then computes...
    cache.bump_versions("seq", ["v:a"], 0, 0)  # ...while a write bumps what it shows (v:a at 2)
    client.delete("t:v:a")  # and v:a is evicted before the reader stores

    cache.keep_versioned("seq", VersionedEntry("e", "stale", 60, made_at, ("v:a",), 120))

    assert cache.get_fresh("seq", "e") == (2, None)  # v:a came back at the counter (2), past the entry
