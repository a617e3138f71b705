"""The delivery's gate and thread, with an in-memory journal and store (the real ones: tests/integration)."""

from __future__ import annotations

import gc
import time
from collections.abc import Sequence
from typing import Any

from service.metrics import Metrics, PrometheusMetrics
from service.shared_reads.delivery import Delivery


class Connections:
    count = 0


class Store:
    """Keeps what it is given; ``down`` makes it raise as an unreachable Redis does."""

    def __init__(self) -> None:
        self.reconnects = Connections()
        self.values: dict[str, str] = {}
        self.delivered: list[str] = []
        self.down = False

    def deliver(
        self,
        counter: str,
        rows: Sequence[tuple[str, Sequence[str]]],
        seed: int,
        timeout: int,
        marker_timeout: int,
        position: tuple[str, str] | None = None,
    ) -> list[int]:
        if self.down:
            raise ConnectionError("down")
        self.delivered += [marker for marker, _ in rows]
        if position is not None:
            self.values[position[0]] = position[1]
        return [1 for _ in rows]

    def read_text(self, key: str) -> str | None:
        if self.down:
            raise ConnectionError("down")
        return self.values.get(key)


class Journal:
    def __init__(self) -> None:
        self.rows: list[tuple[int, list[str]]] = []

    def read_on(self, position: str | None, window_seconds: float) -> tuple[list[tuple[int, list[str]]], str]:
        start = int(position.split()[1]) if position else 1
        return [row for row in self.rows if row[0] >= start], f"i {len(self.rows) + 1}"

    def prune(self, older_than_seconds: float) -> int:
        return 0


def _delivery(store: Store, journal: Journal, **options: Any) -> Delivery:
    return Delivery(
        journal,
        store,
        counter="seq",
        version_name=lambda digest: f"v:{digest}",
        prefix="t",
        version_timeout=60,
        window=60,
        clock_seed=lambda: 0,
        **options,
    )


def test_the_store_is_read_only_while_the_last_delivery_is_recent_and_on_the_same_connections() -> None:
    store, journal = Store(), Journal()
    delivery = _delivery(store, journal, interval=3600, bound=0.2)
    delivery.fresh()  # starts the thread: one delivery, then an hour's sleep
    time.sleep(0.05)
    journal.rows.append((1, ["a"]))
    assert delivery.run_once()
    fresh_after_delivery = delivery.fresh()
    store.reconnects.count += 1  # a new connection: perhaps another server
    fresh_after_reconnect = delivery.fresh()
    delivery.run_once()
    fresh_again = delivery.fresh()
    time.sleep(0.25)
    fresh_past_the_bound = delivery.fresh()
    store.down = True
    failed = delivery.run_once()

    assert fresh_after_delivery and not fresh_after_reconnect and fresh_again
    assert not fresh_past_the_bound and failed is False and not delivery.fresh()
    assert store.delivered.count("t:d:1") == 1  # read on from the stored position: the row once
    assert store.values["t:journal"] == "i 2"


def test_the_thread_ends_with_the_delivery() -> None:
    delivery = _delivery(Store(), Journal(), interval=0.01)
    delivery.fresh()
    thread = delivery.thread
    time.sleep(0.05)
    running = thread is not None and thread.is_alive()
    del delivery
    gc.collect()
    time.sleep(0.1)
    assert running and thread is not None
    assert not thread.is_alive()


class Counted(Metrics):
    def __init__(self) -> None:
        self.deliveries: list[tuple[bool, int]] = []

    def cache_delivery(self, ok: bool, late_rows: int) -> None:
        self.deliveries.append((ok, late_rows))


def test_each_delivery_is_counted_with_the_rows_it_bumped_before_their_writer() -> None:
    store, journal, metrics = Store(), Journal(), Counted()
    delivery = _delivery(store, journal, interval=3600, metrics=metrics)
    journal.rows += [(1, ["a"]), (2, ["b"])]
    delivery.run_once()
    delivery.run_once()  # nothing new
    store.down = True
    delivery.run_once()
    exposed = PrometheusMetrics(None, ("v", "h"))
    exposed.cache_delivery(True, 2)
    exposed.cache_delivery(False, 0)
    text = exposed.exposition("text/plain")[0].decode()

    assert metrics.deliveries == [(True, 2), (True, 0), (False, 0)]
    assert 'conduit_cache_journal_deliveries_total{outcome="ok"} 1.0' in text
    assert 'conduit_cache_journal_deliveries_total{outcome="failed"} 1.0' in text
    assert "conduit_cache_journal_late_rows_total 2.0" in text
