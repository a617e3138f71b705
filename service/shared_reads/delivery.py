"""Invalidations delivered from the database's journal to a cache every host shares, by whichever host reaches it.

Writes never wait for the shared cache: a write records what it changes in
the journal (``queries.journal``), in its own transaction, and bumps the
cache after its commit if it can. Each process serving from the shared cache
runs a :class:`Delivery` beside its requests, which every ``interval``:

1. reads where the cache says the journal was delivered to (a *position*
   kept in the cache itself, beside what it says: a Redis restored from a
   snapshot, or a replica promoted without the last writes, holds a position
   as old as what it holds);
2. reads the journal's rows past it, and bumps each in the cache unless its
   marker says it was (the writer's own bump, or another host's delivery),
   then stores the new position, in one pipeline on one connection.

**The bound.** This process serves from the cache only while its last
delivery *began* less than ``bound`` seconds ago and no new connection to the
cache was opened since it began (a new connection may be to another server:
the next delivery must run on it first). Every write committed before that
delivery began was in the journal it read, so an answer served at time *t*
shows every write committed before *t* - ``bound``, whether the cache was down
for everyone or cut from some hosts only, and nothing from before an
undelivered write is served when the cache comes back. A hit costs what it
did: the check is two numbers in memory.

Imports the metrics only; the journal and the store are handed in.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from service.metrics import NO_METRICS, Metrics

logger = logging.getLogger(__name__)

#: Seconds between deliveries.
INTERVAL = 0.25
#: The staleness bound, in seconds: nothing served from the cache misses a write committed longer ago.
BOUND = 1.0
#: Seconds between deletions of journal rows no cached answer can predate.
PRUNE_EVERY = 60.0
#: Rows sent to the cache in one pipeline.
BATCH = 500


class Journal(Protocol):
    """The database side (``service.queries.journal.Journal``)."""

    def read_on(self, position: str | None, window_seconds: float) -> tuple[list[tuple[int, list[str]]], str]:
        """The rows past ``position`` (without one: those of the last ``window_seconds``), and the next position."""
        ...

    def prune(self, older_than_seconds: float) -> int:
        """Delete rows older than that; how many."""
        ...


class Reconnects(Protocol):
    """How many connections the store's client has opened so far."""

    count: int


@runtime_checkable
class DeliveringStore(Protocol):
    """The cache side (``stores.BatchingRedisCache``)."""

    reconnects: Reconnects

    def deliver(
        self,
        counter: str,
        rows: Sequence[tuple[str, Sequence[str]]],
        seed: int,
        timeout: int,
        marker_timeout: int,
        position: tuple[str, str] | None = None,
    ) -> list[int]:
        """Bump each ``(marker, names)`` row not marked yet, then store ``position``."""
        ...

    def read_text(self, key: str) -> str | None:
        """A stored position."""
        ...


class Delivery:
    """The journal delivered to a shared store by this process, and whether the store may be read now.

    :param journal: the database's journal.
    :param store: the shared cache.
    :param counter: the store's write counter (``SharedReads.seq_key``).
    :param version_name: a journal digest → the version key it bumps.
    :param prefix: prefix of the markers and the position in the store.
    :param version_timeout: seconds a bumped version is kept.
    :param window: seconds of journal to deliver when the store holds no position (an answer's lifetime).
    :param clock_seed: the counter's floor (the clock in microseconds).
    :param metrics: told of each delivery and of the rows it bumped late.
    """

    def __init__(
        self,
        journal: Journal,
        store: DeliveringStore,
        *,
        counter: str,
        version_name: Callable[[str], str],
        prefix: str,
        version_timeout: int,
        window: float,
        clock_seed: Callable[[], int],
        interval: float = INTERVAL,
        bound: float = BOUND,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self.journal = journal
        self.store = store
        self.counter = counter
        self.version_name = version_name
        self.prefix = prefix
        self.position_key = f"{prefix}:journal"
        self.version_timeout = version_timeout
        self.window = window
        self.clock_seed = clock_seed
        self.interval = interval
        self.bound = bound
        self.metrics = metrics
        #: (the reconnect count the last delivery ran under, when its bound runs out): read by every lookup.
        self._verified: tuple[int, float] = (-1, 0.0)
        self._pid = 0
        self._failing = False
        self._next_prune = 0.0
        self.thread: threading.Thread | None = None
        self._starting = threading.Lock()

    def fresh(self) -> bool:
        """Whether this process may serve from the store now (see the module docstring)."""
        if self._pid != os.getpid():
            self.start()
        count, until = self._verified
        return count == self.store.reconnects.count and time.monotonic() < until

    def marker(self, row_id: int) -> str:
        """The store's name for "journal row ``row_id`` was delivered"."""
        return f"{self.prefix}:d:{row_id}"

    def deliver_row(self, row_id: int, digests: Sequence[str]) -> bool:
        """A writer's own delivery of its row, after its commit; whether the store took it."""
        names = [self.version_name(digest) for digest in digests]
        try:
            self.store.deliver(self.counter, [(self.marker(row_id), names)], self.clock_seed(), *self._timeouts())
        except Exception:
            logger.warning("shared cache unreachable after a commit: hosts deliver the write from the journal")
            return False
        return True

    def run_once(self) -> bool:
        """One delivery: the journal past the store's position, then the new position; whether it succeeded."""
        began = time.monotonic()
        connections = self.store.reconnects.count
        try:
            position = self.store.read_text(self.position_key)
            rows, after = self.journal.read_on(position, self.window)
            batches = [rows[i : i + BATCH] for i in range(0, len(rows), BATCH)] or [[]]
            late = 0
            for n, batch in enumerate(batches):
                marked = [(self.marker(row_id), [self.version_name(d) for d in digests]) for row_id, digests in batch]
                last = n == len(batches) - 1
                bumped = self.store.deliver(
                    self.counter,
                    marked,
                    self.clock_seed(),
                    *self._timeouts(),
                    position=(self.position_key, after) if last else None,
                )
                late += sum(1 for value in bumped if value)
        except Exception:
            self.metrics.cache_delivery(False, 0)
            if not self._failing:
                logger.warning("journal delivery failed: the shared cache is bypassed until one works", exc_info=True)
            self._failing = True
            return False
        self.metrics.cache_delivery(True, late)
        if self._failing:
            logger.warning("journal delivered again: the shared cache is read again")
            self._failing = False
        if self.store.reconnects.count == connections:  # all of it went to the server it began on
            self._verified = (connections, began + self.bound)
        if began >= self._next_prune:
            self._prune(began)
        return True

    def start(self) -> None:
        """Deliver in a thread of this process (again after a fork: threads do not survive one)."""
        with self._starting:  # a threaded server's first requests may all get here at once: one thread
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._verified = (-1, 0.0)
            self._start_thread()

    def _start_thread(self) -> None:
        # The thread holds the delivery weakly: it ends with the app that made it (a test's, or after a reload).
        self.thread = threading.Thread(target=_deliver_while_used, args=(weakref.ref(self), self._pid), daemon=True)
        self.thread.name = "conduit-delivery"
        self.thread.start()

    def _timeouts(self) -> tuple[int, int]:
        # A row's marker lives as long as the versions it bumped: past that, a second bump is harmless.
        return self.version_timeout, self.version_timeout

    def _prune(self, now: float) -> None:
        # Spread over the hosts: each process prunes about once a PRUNE_EVERY, at its own moment.
        self._next_prune = now + PRUNE_EVERY * random.uniform(0.5, 1.5)
        try:
            self.journal.prune(2 * self.window + self.version_timeout)
        except Exception:
            logger.warning("journal prune failed", exc_info=True)


def _deliver_while_used(ref: weakref.ref[Delivery], pid: int) -> None:
    """Deliver every ``interval`` while the delivery exists and this is still the process that started it."""
    while True:
        delivery = ref()
        if delivery is None or delivery._pid != pid:
            return
        began = time.monotonic()
        if delivery.run_once() and delivery._verified[0] != delivery.store.reconnects.count:
            delivery.run_once()  # it opened a connection (a worker's first): once more on it, not an interval later
        interval = delivery.interval
        del delivery  # held only while it runs
        time.sleep(max(0.0, interval - (time.monotonic() - began)))
