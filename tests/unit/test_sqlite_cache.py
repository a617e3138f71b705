"""The cachelib cache on a SQLite file."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

from service.stores.sqlite_cache import SQLiteCache


def test_set_get_delete_round_trip(tmp_path: Path) -> None:
    cache = SQLiteCache(tmp_path / "c.db", default_timeout=60)

    cache.set("k", (200, [("A", "b")], b"body"))

    assert cache.get("k") == (200, [("A", "b")], b"body") and cache.has("k")
    assert cache.delete("k") and cache.get("k") is None


def test_entries_expire(tmp_path: Path) -> None:
    cache = SQLiteCache(tmp_path / "c.db")

    cache.set("short", "v", timeout=1)
    cache.set("forever", "v", timeout=0)
    time.sleep(1.1)

    assert cache.get("short") is None and cache.get("forever") == "v"


def test_add_only_fills_an_empty_or_expired_key(tmp_path: Path) -> None:
    cache = SQLiteCache(tmp_path / "c.db")

    first = cache.add("g", "one")
    second = cache.add("g", "two")
    cache.set("old", "x", timeout=1)
    time.sleep(1.1)
    over_expired = cache.add("old", "y")

    assert (first, second, over_expired) == (True, False, True)
    assert cache.get("g") == "one" and cache.get("old") == "y"


def _add(args: tuple[str, int]) -> bool:
    path, n = args
    return SQLiteCache(Path(path)).add("generation", f"value-{n}", 0)


def test_add_is_atomic_across_processes(tmp_path: Path) -> None:
    with multiprocessing.get_context("fork").Pool(4) as pool:
        won = pool.map(_add, [(str(tmp_path / "c.db"), n) for n in range(16)])

    assert sum(won) == 1


def test_get_many_returns_values_in_the_order_asked_with_none_for_missing_or_expired(tmp_path: Path) -> None:
    cache = SQLiteCache(tmp_path / "c.db")
    cache.set("a", 1)
    cache.set("b", {"x": 2})
    cache.set("gone", 3, timeout=1)
    time.sleep(1.1)

    assert cache.get_many("b", "missing", "a", "gone") == [{"x": 2}, None, 1, None]
    assert cache.get_many() == []


def test_a_flood_of_entries_is_trimmed_to_the_threshold_keeping_what_never_expires(tmp_path: Path) -> None:
    cache = SQLiteCache(tmp_path / "c.db", default_timeout=60, threshold=20)
    cache.set("generation", "g", timeout=0)

    for n in range(200):
        cache.set(f"entry-{n}", n)

    kept = [key for key in ["generation", *(f"entry-{n}" for n in range(200))] if cache.has(key)]
    assert len(kept) <= 22  # the threshold, overshot by a tenth at most
    assert "generation" in kept and "entry-199" in kept and "entry-0" not in kept
