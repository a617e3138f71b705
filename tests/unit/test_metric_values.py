"""``service.metric_values`` writes what prometheus_client's own multiprocess values would, at less cost.

Each test runs in a process of its own: a value class is chosen for the whole
process. The same counts are made with the library's values in one folder and
with ours in another, and the library's collector must read the two folders
alike; a fork must leave the parent's counts the parent's, as the library does.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from service import metric_values

ROOT = Path(__file__).resolve().parents[2]

#: Makes the same metrics and counts in ``folder`` with the value class ``kind`` (``library`` or ``ours``).
_COUNTS = """
import os
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values
from prometheus_client.exposition import generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from service import metric_values

BOUNDS = (0.001, 0.005, 0.01)
#: On a bound, between bounds, above the last one (+Inf), zero, and tiny.
OBSERVED = (0.001, 0.005, 0.0049, 0.0051, 0.01, 0.5, 0.0, 1e-9, 0.002, 0.002)


def count(kind, folder):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    if kind == "library":
        values.ValueClass = values.MultiProcessValue()
    else:
        metric_values.write_in(folder)
        values.ValueClass = metric_values.FileValue
    requests = Histogram("t_seconds", "h", ("route",), buckets=BOUNDS, registry=None)
    for route in ("/a", "/b"):
        child = requests.labels(route)
        timed = child if kind == "library" else metric_values.timed(child)
        assert (kind == "library") != isinstance(timed, metric_values.Timings), "this library's child, unknown"
        for seconds in OBSERVED:
            timed.observe(seconds)
    hits = Counter("t_hits", "c", ("scope",), registry=None)
    hits.labels("x").inc()
    hits.labels("x").inc(2.5)
    hits.labels("y").inc()
    Gauge("t_info", "g", ("v",), registry=None, multiprocess_mode="livemax").labels("1").set(1)
    Gauge("t_level", "g", registry=None, multiprocess_mode="all").set(7)
    return hits


def scrape(folder):
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(folder))
    return generate_latest(registry).decode()
"""


def _run(script: str) -> str:
    program = _COUNTS + textwrap.dedent(script)
    done = subprocess.run([sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_scrape_reads_our_values_as_it_reads_the_librarys(tmp_path: Path) -> None:
    out = _run(
        f"""
        theirs, ours = Path({str(tmp_path / "library")!r}), Path({str(tmp_path / "ours")!r})
        theirs.mkdir(); ours.mkdir()
        count("library", theirs)
        count("ours", ours)
        print(scrape(theirs) == scrape(ours))
        print(scrape(ours))
        print(sorted(path.name for path in ours.iterdir()) == sorted(path.name for path in theirs.iterdir()))
        """,
    )
    same, *scraped, same_files = out.strip().splitlines()
    assert same == "True", "\n".join(scraped)
    assert same_files == "True"  # the library's file names: counter_<pid>.db, gauge_livemax_<pid>.db...
    text = "\n".join(scraped)
    # The counts themselves (not only their agreement): 10 per route, bucketed by ``le``.
    assert 't_seconds_bucket{le="0.001",route="/a"} 3.0' in text  # 0.0, 1e-9 and 0.001, on the bound
    assert 't_seconds_bucket{le="0.005",route="/a"} 7.0' in text
    assert 't_seconds_bucket{le="+Inf",route="/b"} 10.0' in text
    assert 't_seconds_count{route="/a"} 10.0' in text
    assert 't_hits_total{scope="x"} 3.5' in text


def test_after_a_fork_each_process_counts_in_its_own_files(tmp_path: Path) -> None:
    out = _run(
        f"""
        from prometheus_client import multiprocess
        folder = Path({str(tmp_path)!r})
        hits = count("ours", folder)
        child = os.fork()
        if child == 0:
            hits.labels("x").inc(10)  # the child's own file, from zero
            os._exit(0)
        os.waitpid(child, 0)
        hits.labels("x").inc(100)
        print(sorted(path.name for path in folder.iterdir()))
        print(child, os.getpid())
        print(scrape(folder))
        multiprocess.mark_process_dead(child, str(folder))
        print(sorted(path.name for path in folder.iterdir()))
        """,
    )
    files, pids, *scraped, after = out.strip().splitlines()
    child, parent = pids.split()
    assert f"counter_{child}.db" in files and f"counter_{parent}.db" in files
    assert f"gauge_livemax_{child}.db" in files  # the child's values were moved to its own files at the fork
    text = "\n".join(scraped)
    assert 't_hits_total{scope="x"} 113.5' in text  # 3.5 before the fork, 10 in the child, 100 in the parent
    assert 't_seconds_count{route="/a"} 10.0' in text  # not doubled: the child's histogram starts from zero
    # A dead process's gauges go (mark_process_dead finds our files by the library's names); its counts stay.
    assert f"gauge_livemax_{child}.db" not in after and f"counter_{child}.db" in after


def test_a_histogram_child_of_another_shape_is_observed_as_it_is() -> None:
    # A later prometheus_client may name a child's values otherwise: then the library's own observe, not a crash.
    class Child:
        _sum = None

        def observe(self, seconds: float) -> None:
            raise NotImplementedError

    child = Child()
    assert metric_values.timed(child) is child
