"""The Redis response cache against a real redis-server: deferred stores, one round trip per read."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis

from service.shared_reads.store import VersionedEntry
from service.stores.redis_cache import _ADVANCE, BatchingRedisCache
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


def test_a_redis_that_lost_its_scripts_still_answers_and_keeps_what_comes_next(client: redis.Redis) -> None:
    """A restarted Redis has no scripts: the read with queued stores in its pipeline loads them again."""
    cache = BatchingRedisCache(client, key_prefix="t:")
    made_at = cache.bump_versions("seq", ["v:a", "v:b"], 0, 0)
    cache.keep_versioned("seq", VersionedEntry("e", "first", 60, made_at, ("v:a",), 120))
    cache.get_fresh("seq", "e")  # the scripts are loaded, the entry sent
    client.script_flush()
    cache.keep_versioned("seq", VersionedEntry("f", "second", 60, made_at, ("v:b",), 120))

    lost = cache.get_fresh("seq", "e")  # its pipeline's scripts are gone: answered anyway, the queued store dropped
    cache.keep_versioned("seq", VersionedEntry("f", "third", 60, made_at, ("v:b",), 120))
    cache.get_fresh("seq", "e")
    client.script_flush()
    delivered = cache.deliver("seq", [("d:1", ["v:c"])], 0, 60, 60)

    assert lost == (made_at, "first")
    assert cache.get_fresh("seq", "f")[1] == "third"
    assert delivered[0] > 0


def test_a_journal_row_is_bumped_once_and_the_counter_never_falls_below_the_clock(client: redis.Redis) -> None:
    cache = BatchingRedisCache(client, key_prefix="t:")
    first = cache.deliver("seq", [("d:7", ["v:a"]), ("d:8", ["v:b"])], 1_000, 60, 60, position=("journal", "s 9"))
    again = cache.deliver("seq", [("d:7", ["v:a"])], 1_000, 60, 60)  # another host delivers row 7 too
    client.set("t:seq", 5)  # a Redis that came back without the last bumps: its counter went back
    after_loss = cache.bump_versions("seq", ["v:c"], 2_000, 60)

    assert first == [1_001, 1_002] and again == [0]
    assert int(client.get("t:v:a") or 0) == 1_001  # the second delivery bumped nothing
    assert cache.read_text("journal") == "s 9"
    assert after_loss == 2_001  # past every value read before, whatever the counter says


def test_after_a_reconnect_nothing_is_served_until_the_journal_was_delivered_to_that_server(
    client: redis.Redis, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A Redis back with older data (a restart from a snapshot, a promoted replica): its entries wait for a delivery."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from service.models import CacheInvalidation
    from service.queries.journal import Journal
    from service.shared_reads.reads import SharedReads
    from service.stores.redis_cache import Reconnects

    engine = create_engine(f"sqlite:///{tmp_path / 'journal.db'}")
    CacheInvalidation.__table__.create(engine)  # type: ignore[attr-defined]
    reconnects = Reconnects()
    where = client.connection_pool.connection_kwargs
    watched = redis.Redis(host=where["host"], port=where["port"], redis_connect_func=reconnects)
    request.addfinalizer(watched.close)
    store = BatchingRedisCache(watched, key_prefix="t:", reconnects=reconnects)
    # One delivery at start, then only those the test runs.
    shared = SharedReads(store, key_prefix="t", ttl=60, min_uses=1, journal=Journal(engine), delivery_interval=3600)
    assert shared.delivery is not None
    get = {"REQUEST_METHOD": "GET", "PATH_INFO": "/api/articles/a"}
    article = {"slug": "a", "favorited": False, "author": {"username": "jake", "following": False}}
    shared.delivery.fresh()  # starts this process's delivery thread: one delivery, then an hour's sleep
    time.sleep(0.3)
    shared.delivery.run_once()  # on the connection the first one opened: this one counts
    missed = shared.lookup(get, ())
    assert missed is not None
    shared.keep(missed, ("article:a",), {"article": article}, "/api/articles/{slug}")
    shared.lookup(get, ())  # sends the entry
    hit = shared.lookup(get, ())
    snapshot = {key: client.dump(key) for key in client.keys("t:*")}  # what a restart would come back with

    with Session(engine) as session:  # a write: its journal row in its transaction, its bump after the commit
        row = shared.before_commit(frozenset({"article:a"}), session)
        session.commit()
    bumped = shared.after_commit(frozenset({"article:a"}), row)
    after_write = shared.lookup(get, ())
    client.flushall()  # Redis back without the bump: the entry, the versions, the counter and the position as before
    for key, value in snapshot.items():
        client.restore(key, 0, value)
    client.client_kill_filter(_type="normal", skipme=True)  # and every connection to it dropped, as by a restart

    before_delivery = shared.lookup(get, ())
    deliveries = [shared.delivery.run_once() for _ in range(2)]
    after_delivery = shared.lookup(get, ())

    assert hit is not None and hit.answer is not None
    assert row is not None and bumped and after_write is not None and after_write.answer is None
    assert before_delivery is None  # not read: the entry there would be from before the write
    assert deliveries == [True, True]
    assert after_delivery is not None and after_delivery.answer is None  # read again, and the entry is dead


def test_the_position_stays_where_it_was_when_a_row_of_its_batch_was_not_delivered(client: redis.Redis) -> None:
    """A pipeline whose row scripts fail (a Redis that lost them) must not say the rows were delivered."""
    cache = BatchingRedisCache(client, key_prefix="t:")
    cache.deliver("seq", [("d:1", ["v:a"])], 0, 60, 60, position=("journal", "s 5"))
    client.script_flush()
    pipe = client.pipeline(transaction=False)
    pipe.evalsha(cache._deliver.sha, 3, "t:seq", "t:d:2", "t:v:b", 0, 60, 60)  # as deliver() sends a row
    pipe.eval(_ADVANCE, 2, "t:journal", "t:d:2", "s 9")
    results = pipe.execute(raise_on_error=False)

    assert isinstance(results[0], redis.exceptions.NoScriptError)
    assert results[1] == 0 and cache.read_text("journal") == "s 5"  # not advanced past the row it lacks
    assert cache.deliver("seq", [("d:2", ["v:b"])], 0, 60, 60, position=("journal", "s 9"))[0] > 0  # reloaded
    assert cache.read_text("journal") == "s 9"
