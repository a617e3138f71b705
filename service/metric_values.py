"""prometheus_client's multiprocess values, written with one lock and no system call per count.

In multiprocess mode every value lives in a file of its process, in the
library's format (``MmapedDict``), which its ``MultiProcessCollector`` reads at
a scrape. The library's own value class (``MmapedValue``) asks for the process
id at each count, to notice a fork, and a histogram's ``observe`` writes its
sum and its bucket through two of them, each taking the lock and checking again.
In a gunicorn worker serving cache hits that was 3.4 % of its throughput
(``bench/metrics_cost.py``), nearly all of what the metrics cost.

Here a fork is noticed once, as it happens (``os.register_at_fork``), and a
request's sum and bucket are written in one step (:class:`Timings`). The files,
their names and their keys are the library's (``MmapedDict``, ``mmap_key``),
so a scrape, ``mark_process_dead`` and the counts kept across a worker's death
are unchanged; ``tests/unit/test_metric_values.py`` holds what a scrape reads to
what the library's own values give for the same counts, and a fork to the
library's behaviour.

``FileValue`` is installed as prometheus_client's value class
(``prometheus_client.values.ValueClass``, the seam the library itself uses to
choose between its in-memory and its multiprocess values) by
``service.metrics`` when a folder is set, before any metric is made.
"""

from __future__ import annotations

import os
import threading
from bisect import bisect_left
from pathlib import Path
from typing import Any

from prometheus_client import mmap_dict
from prometheus_client.mmap_dict import mmap_key

#: The library's file of values (its methods are not typed).
MmapedDict: Any = mmap_dict.MmapedDict

#: One lock for every value of the process: the values of a kind share one file.
_LOCK = threading.Lock()
#: The folder the values are written in; set by :func:`write_in`.
_FOLDER: list[Path] = []
#: This process's files, by folder and kind (``counter``, ``histogram``, ``gauge_livemax``...).
_FILES: dict[tuple[Path, str], Any] = {}
#: Every value made in this process, to move to the child's own files after a fork.
_VALUES: list[FileValue] = []


def write_in(folder: Path) -> None:
    """Write every value made from now on in ``folder`` (those made before stay in theirs)."""
    _FOLDER[:] = [folder]


class FileValue:
    """One value (a sample of one label set) in this process's file of its kind.

    The constructor's signature is the one prometheus_client calls a value class with.
    """

    _multiprocess = True  # the library's marker: no ``_created`` samples, and so on

    def __init__(
        self,
        typ: str,
        metric_name: str,
        name: str,
        labelnames: Any,
        labelvalues: Any,
        help_text: str,
        multiprocess_mode: str = "",
        **_: Any,
    ) -> None:
        # The library's file names: a gauge's mode is part of its kind, so a scrape knows how to add it up.
        self._kind = f"{typ}_{multiprocess_mode}" if typ == "gauge" else typ
        self._folder = _FOLDER[0]
        self._key = mmap_key(metric_name, name, labelnames, labelvalues, help_text)
        with _LOCK:
            self._open()
            _VALUES.append(self)

    def _open(self) -> None:
        """Find this value in this process's file (a value made twice in a process continues its count)."""
        where = (self._folder, self._kind)
        file = _FILES.get(where)
        if file is None:
            file = _FILES[where] = MmapedDict(str(self._folder / f"{self._kind}_{os.getpid()}.db"))
        self._file = file
        self.value: float = file.read_value(self._key)[0]

    def inc(self, amount: float) -> None:
        with _LOCK:
            self.value += amount
            self._file.write_value(self._key, self.value, 0.0)

    def set(self, value: float, timestamp: float | None = None) -> None:
        with _LOCK:
            self.value = value
            self._file.write_value(self._key, value, timestamp or 0.0)

    def get(self) -> float:
        with _LOCK:
            return self.value

    def set_exemplar(self, exemplar: Any) -> None:
        """Exemplars are not kept in multiprocess mode (nor by the library's own values)."""

    def get_exemplar(self) -> None:
        return None


def timed(child: Any) -> Any:
    """``child`` (a histogram's label set) observed through :class:`Timings`, or as it is.

    As it is when it is not the library's child as this module knows it (a
    later prometheus_client may name its values otherwise): slower, never wrong.
    """
    parts = (getattr(child, name, None) for name in ("_sum", "_buckets", "_upper_bounds"))
    total, buckets, bounds = parts
    if isinstance(total, FileValue) and isinstance(buckets, list) and isinstance(bounds, list):
        return Timings(child)
    return child


class Timings:
    """One label set of a histogram whose values are :class:`FileValue`: its sum and a bucket, written in one step.

    What ``Histogram.observe`` does, under one lock, without its checks for
    exemplars and for a histogram with labels but no label values (``labels()``
    has given this one its values). The child's values are reached through its
    attributes (``_sum``, ``_buckets``, ``_upper_bounds``): prometheus_client's
    own names, held by ``tests/unit/test_metric_values.py`` (and checked by
    :func:`timed` before this is used).
    """

    def __init__(self, child: Any) -> None:
        self._sum: FileValue = child._sum
        self._buckets: list[FileValue] = child._buckets
        self._bounds: list[float] = child._upper_bounds  # ends with +Inf: every value falls in a bucket

    def observe(self, seconds: float) -> None:
        bucket = self._buckets[bisect_left(self._bounds, seconds)]  # the first bound >= seconds (``le``)
        total = self._sum
        with _LOCK:
            total.value += seconds
            total._file.write_value(total._key, total.value, 0.0)
            bucket.value += 1.0
            bucket._file.write_value(bucket._key, bucket.value, 0.0)


def _forked() -> None:
    """In a child just forked: its counts go to files of its own, from zero (the parent's stay the parent's).

    The library does the same when it notices a new process id. The parent's
    files, open here too, are closed in the child only.
    """
    global _LOCK
    _LOCK = threading.Lock()  # another thread of the parent may have held it at the fork
    for file in _FILES.values():
        file.close()
    _FILES.clear()
    for value in _VALUES:
        value._open()


os.register_at_fork(after_in_child=_forked)
