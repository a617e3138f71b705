"""cachelib's RedisCache, with stores that ride along with the next read.

A response cache stores an entry on every miss. On a round trip of its own,
that store cost as much as the lookup before it (``bench/README.md``): with the
rate limiter's check, a miss waited for Redis three times. ``set_later`` queues
the entry instead, and the next ``get_many`` of this process sends the queued
``SET``\\ s and its ``MGET`` in one pipeline, in that order, so a miss waits for
Redis twice and this process still reads its own stores at once.

What it costs: another process sees an entry only after the process that made
it has sent it with its next read (under load, milliseconds later), and
entries still queued when a process exits are lost. For a cache both only mean
a later miss; correctness never depended on an entry being there.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

import redis
from cachelib import RedisCache

from service.shared_reads.store import VersionedEntry, VersionedStore

#: Add one to the counter KEYS[1], never to less than ARGV[1] + 1 (the clock in microseconds), and set
#: every other key to it for ARGV[2] seconds (0: forever). One script, so no other bump runs in between.
#: The clock's floor keeps the counter ahead of every value any reader ever read, even on a Redis that
#: came back from a snapshot or a replica promoted without the last bumps (``shared_reads.delivery``).
_BUMP_BODY = """
local floor = tonumber(ARGV[1]) + 1
local value = redis.call('INCR', KEYS[1])
if value < floor then redis.call('SET', KEYS[1], floor); value = floor end
local seconds = tonumber(ARGV[2])
for i = FIRST, #KEYS do
    if seconds > 0 then redis.call('SET', KEYS[i], value, 'EX', seconds) else redis.call('SET', KEYS[i], value) end
end
return value
"""
_BUMP = _BUMP_BODY.replace("FIRST", "2")

#: The bump of one journal row (``queries.journal``): KEYS[2] marks the row delivered for ARGV[3] seconds,
#: and a row already marked is not bumped again (every host delivers every row; one bump is enough, and
#: a marker lost with the bump it rode with, on a Redis that lost data, lets the row be delivered again).
_DELIVER = """
if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', tonumber(ARGV[3])) then return 0 end
""" + _BUMP_BODY.replace("FIRST", "3")


#: The write counter KEYS[1] and the entry KEYS[2], the entry only if fresh: none of the version
#: keys listed in KEYS[3] (after the counter value the entry was made at) is missing or past it.
#: One round trip for a hit, as before versions; the version keys are not declared in KEYS, which
#: a single Redis (or a primary with replicas) allows and Redis Cluster would not.
_FETCH = """
local seq = redis.call('GET', KEYS[1])
local deps = redis.call('GET', KEYS[3])
if not deps then return {seq or false, false} end
local made_at, names = nil, {}
for word in string.gmatch(deps, '%S+') do
    if made_at == nil then made_at = tonumber(word) else names[#names + 1] = word end
end
if #names > 0 then
    local versions = redis.call('MGET', unpack(names))
    for i = 1, #names do
        local version = tonumber(versions[i] or '')
        if version == nil or version > made_at then return {seq or false, false} end
    end
end
return {seq or false, redis.call('GET', KEYS[2]) or false}
"""


#: Create the missing version keys KEYS[2..] for ARGV[1] seconds (0: forever), at the counter KEYS[1]'s
#: current value, or past the entry's (ARGV[2]) when the counter is missing. A version that is missing
#: was never bumped or was evicted: at the current value, an entry whose reader began before some later
#: write is stale from the start (a miss later), never an answer from before that write.
_ADD_VERSIONS = """
local value = redis.call('GET', KEYS[1]) or tostring(tonumber(ARGV[2]) + 1)
local seconds = tonumber(ARGV[1])
for i = 2, #KEYS do
    if redis.call('EXISTS', KEYS[i]) == 0 then
        if seconds > 0 then redis.call('SET', KEYS[i], value, 'EX', seconds) else redis.call('SET', KEYS[i], value) end
    end
end
return 1
"""


#: Store ARGV[1] at KEYS[1] (where the journal was delivered to) only if every row's marker KEYS[2..]
#: exists: a row script that failed in the same pipeline (a Redis that lost its scripts) leaves the
#: position where it was, so the rows are read and delivered again. Sent with its text (``EVAL``), so it
#: cannot fail for the same reason.
_ADVANCE = """
for i = 2, #KEYS do
    if redis.call('EXISTS', KEYS[i]) == 0 then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1])
return 1
"""


class Reconnects:
    """Counts this process's new connections to Redis (redis-py's ``redis_connect_func``).

    A new connection may be to another server (a restarted Redis, a promoted
    replica) that lacks bumps the old one had: the shared reads stop serving
    from it until a delivery has run on it (``shared_reads.delivery``).
    """

    def __init__(self) -> None:
        self._made = itertools.count(1)
        self.count = 0

    def __call__(self, connection: Any) -> None:
        connection.on_connect()  # what redis-py does when no function is given
        self.count = next(self._made)  # atomic: threads (a request, the delivery) connect side by side


class BatchingRedisCache(RedisCache, VersionedStore):
    """A RedisCache whose ``set_later`` entries are sent with the next ``get_many``.

    :param client: the Redis client (its timeouts decide when Redis counts as down).
    :param key_prefix: prefix of every key, as in ``RedisCache``.
    :param default_timeout: seconds an entry lives; 0 = forever.
    :param max_pending: stores that may wait (an entry and its versions); beyond that the oldest are dropped.
    """

    #: Every host reads the same Redis: a write must reach it before it commits (``shared_reads``).
    shared_by_hosts = True

    def __init__(
        self,
        client: redis.Redis,
        *,
        key_prefix: str,
        default_timeout: int = 300,
        max_pending: int = 1024,
        reconnects: Reconnects | None = None,
    ) -> None:
        super().__init__(host=client, key_prefix=key_prefix, default_timeout=default_timeout)
        self.client = client
        #: The client's new connections, when it was made with ``redis_connect_func=reconnects``.
        self.reconnects = reconnects if reconnects is not None else Reconnects()
        self.prefix = key_prefix
        self._pending: deque[tuple[str, bytes, int | None, bool]] = deque(maxlen=max_pending)
        # Version keys to create with the next read: (counter, names, seconds, made at).
        self._pending_versions: deque[tuple[str, list[str], int, int]] = deque(maxlen=max_pending)
        # The registered scripts, on first use (registering sends nothing).
        self._bump: Any = None
        self._deliver: Any = None
        self._fetch: Any = None
        self._add_versions: Any = None

    def set_later(self, key: str, value: Any, timeout: int | None = None) -> None:
        """Queue ``key`` to be stored with this process's next read."""
        seconds = self.default_timeout if timeout is None else timeout
        self._pending.append((f"{self.prefix}{key}", self.serializer.dumps(value), seconds or None, False))

    def bump_versions(self, counter: str, names: Iterable[str], seed: int, timeout: int) -> int:
        """Add one to ``counter`` (from ``seed`` when it is missing) and set ``names`` to it: one atomic script."""
        if self._bump is None:
            self._bump = self.client.register_script(_BUMP)
        keys = [f"{self.prefix}{name}" for name in (counter, *names)]
        return int(self._bump(keys=keys, args=[seed, timeout]))

    def deliver(
        self,
        counter: str,
        rows: Sequence[tuple[str, Sequence[str]]],
        seed: int,
        timeout: int,
        marker_timeout: int,
        position: tuple[str, str] | None = None,
    ) -> list[int]:
        """Bump each row's versions unless its marker says it was (``_DELIVER``); then set ``position``.

        One pipeline, in order, on one connection: a position stored says the
        rows before it were delivered to that same server (``_ADVANCE``).

        :param rows: ``(marker, version names)`` of each journal row.
        :param position: ``(key, value)`` to store after the rows: where the journal was read to.
        :returns: each row's new counter value, 0 for a row delivered before.
        """
        if self._deliver is None:
            self._deliver = self._loaded(_DELIVER)
        pipe = self.client.pipeline(transaction=False)
        for marker, names in rows:
            keys = [f"{self.prefix}{name}" for name in (counter, marker, *names)]
            pipe.evalsha(self._deliver.sha, len(keys), *keys, seed, timeout, marker_timeout)
        if position is not None:
            keys = [f"{self.prefix}{position[0]}", *(f"{self.prefix}{marker}" for marker, _ in rows)]
            pipe.eval(_ADVANCE, len(keys), *keys, position[1])
        try:
            results = pipe.execute()
        except redis.exceptions.NoScriptError:  # a Redis that lost its scripts (restarted): load and send again
            self._reload_scripts()
            return self.deliver(counter, rows, seed, timeout, marker_timeout, position)
        return [int(value) for value in results[: len(rows)]]

    def read_text(self, key: str) -> str | None:
        """The plain-text value of ``key`` (a position ``deliver`` stored), or None."""
        value = self.client.get(f"{self.prefix}{key}")
        return value.decode() if isinstance(value, bytes) else None

    def keep_versioned(self, counter: str, entry: VersionedEntry) -> None:
        """Queue what :meth:`get_fresh` needs: the missing versions, the entry, and its list.

        The missing versions are created at the counter's value when they are
        sent (``_ADD_VERSIONS``); the list (``<key>:deps``) is ``made_at`` and the
        version keys' names, in plain text for the script that checks them.
        """
        names = list(entry.versions)
        if names:
            self._pending_versions.append((counter, names, entry.versions_timeout, entry.made_at))
        self.set_later(entry.key, entry.value, entry.timeout)
        deps = " ".join([str(entry.made_at), *(f"{self.prefix}{name}" for name in names)]).encode()
        self._pending.append((f"{self.prefix}{entry.key}:deps", deps, entry.timeout or None, False))

    def get_fresh(self, counter: str, key: str) -> tuple[Any, Any]:
        """``(counter, entry)``, the entry only if none of its versions moved past it, in one round trip."""
        if self._fetch is None:
            self._fetch = self._loaded(_FETCH)
        pipe = self._sending_pending()
        keys = [f"{self.prefix}{counter}", f"{self.prefix}{key}", f"{self.prefix}{key}:deps"]
        if pipe is None:
            seq, entry = self._fetch(keys=keys)  # reloads the script if Redis lost it
        else:
            pipe.evalsha(self._fetch.sha, len(keys), *keys)  # by its hash: no SCRIPT EXISTS round trip
            try:
                seq, entry = pipe.execute()[-1]
            except redis.exceptions.NoScriptError:  # a restarted Redis: scripts again, the queued stores dropped
                self._reload_scripts()
                seq, entry = self._fetch(keys=keys)
        return self.serializer.loads(seq), self.serializer.loads(entry)

    def get_many(self, *keys: str) -> list[Any]:
        """The values of ``keys``, after storing what was queued, in one round trip."""
        pipe = self._sending_pending()
        if pipe is None:
            return super().get_many(*keys)
        pipe.mget([f"{self.prefix}{key}" for key in keys])
        try:
            values = pipe.execute()[-1]
        except redis.exceptions.NoScriptError:  # a restarted Redis: scripts again, the queued stores dropped
            self._reload_scripts()
            return super().get_many(*keys)
        return [self.serializer.loads(value) for value in values]

    def _reload_scripts(self) -> None:
        """Load every script this process uses into Redis again (a restarted Redis has none)."""
        for script in (self._fetch, self._add_versions, self._deliver):
            if script is not None:
                self.client.script_load(script.script)

    def _loaded(self, source: str) -> Any:
        """A script registered and loaded into Redis once (a pipeline then calls it by its hash)."""
        script = self.client.register_script(source)
        self.client.script_load(source)
        return script

    def _sending_pending(self) -> Any:
        """A pipeline with this process's queued stores in it, or None when nothing waits."""
        versions, pending = _drained(self._pending_versions), _drained(self._pending)
        if not versions and not pending:
            return None
        pipe = self.client.pipeline(transaction=False)
        if versions and self._add_versions is None:
            self._add_versions = self._loaded(_ADD_VERSIONS)
        for counter, names, seconds, made_at in versions:
            keys = [f"{self.prefix}{name}" for name in (counter, *names)]
            pipe.evalsha(self._add_versions.sha, len(keys), *keys, seconds, made_at)
        for name, dump, seconds, only_if_missing in pending:
            pipe.set(name=name, value=dump, ex=seconds, nx=only_if_missing)
        return pipe


def _drained(queue: deque[Any]) -> list[Any]:
    """Everything in ``queue``, taken out (another thread may take the last ones first)."""
    taken = []
    while queue:
        try:
            taken.append(queue.popleft())
        except IndexError:
            break
    return taken
