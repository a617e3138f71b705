"""What the Prometheus metrics cost a cache hit: throughput and CPU with ``/metrics`` on against off, in one run.

Two measurements, each comparing the two in the same run:

1. **Under gunicorn** (the production settings of ``service.gunicorn_conf``,
   sync workers, rate limiting on, the host-local cache): every round starts
   one server with metrics off and one with them on (``CONDUIT_METRICS_ALLOW``,
   so prometheus_client's multiprocess mode in the folder gunicorn_conf
   chooses, as deployed), both on one seeded SQLite database, and drives each
   with wrk on the same cached URL (anonymous ``GET /api/articles``, a hit),
   in a shuffled order, while a scraper reads ``/metrics`` of the server that
   has it as Prometheus would (at the start of each run, then every
   ``--scrape-every`` seconds: 15 by default, Prometheus's usual interval).
   Reported: the per-round ratio of requests per second and of the workers'
   CPU time per request (from /proc), median and middle half, and the ratio of
   the sums over all rounds.
2. **Taking turns** (as ``interleaved.py``): the same two servers serve one
   hit each in turn, from two clients at once, so the machine's drift hits
   both alike: the workers' CPU time per request, the least noisy figure.
   Not a throughput: each worker serves one request and then waits, so its
   caches are cold at every request and a hit costs about twice the CPU it
   costs a saturated server (run 1), the metrics' share with it.
3. **In-process** (no server, no network): the same hit
   through the whole WSGI stack of ``create_app``, both apps taking turns in
   blocks, metrics in multiprocess mode: CPU microseconds per hit, and what
   the metrics add.

Usage: python bench/metrics_cost.py [--rounds 16] [--seconds 3] [--workers N] [--scrape-every 15] [--requests 1000]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from interleaved import drive
from throughput import Run, Server, cpu, gunicorn, rps, seeded, settle, wait_for, wrk
from werkzeug.test import EnvironBuilder

ROOT = Path(__file__).resolve().parents[1]
OFF, ON = "metrics off", "metrics on"
#: What differs between the two servers.
CONFIGS = {OFF: {}, ON: {"CONDUIT_METRICS_ALLOW": "127.0.0.1"}}


def scraping(base: str, stop: threading.Event, every: float) -> threading.Thread:
    """Read ``base``/metrics now and every ``every`` seconds until ``stop``, as Prometheus would."""

    def scrape() -> None:
        while True:
            with urllib.request.urlopen(f"{base}/metrics", timeout=5) as response:
                response.read()
            if stop.wait(every):
                return

    thread = threading.Thread(target=scrape, daemon=True)
    thread.start()
    return thread


def start_both(stack: ExitStack, env: dict[str, str], folder: Path, workers: int) -> dict[str, Server]:
    servers = {}
    for name, extra in CONFIGS.items():
        own = {**env, **extra, "CONDUIT_INSTANCE_PATH": str(folder / str(len(servers)))}
        servers[name] = stack.enter_context(gunicorn(own, workers, ()))
    for server in servers.values():
        wait_for(f"{server.base}/healthz")
    settle(list(servers.values()))
    return servers


def under_gunicorn(rounds: int, seconds: int, workers: int, scrape_every: float) -> dict[str, list[Run]]:
    work = Path(tempfile.mkdtemp(prefix="conduit-metrics-bench-"))
    env = seeded(work)
    connections = 2 * workers
    results: dict[str, list[Run]] = {OFF: [], ON: []}
    shuffler = random.Random(1)
    try:
        for round_ in range(rounds):
            with ExitStack() as stack:
                servers = start_both(stack, env, work / f"round-{round_}", workers)
                for server in servers.values():
                    wrk(server, None, 2, connections)  # warm every worker; the URL is stored and then hit
                order = list(CONFIGS)
                shuffler.shuffle(order)
                for name in order:
                    stop = threading.Event()
                    scraper = scraping(servers[name].base, stop, scrape_every) if name == ON else None
                    run = wrk(servers[name], None, seconds, connections)
                    stop.set()
                    if scraper is not None:
                        scraper.join()
                    results[name].append(run)
                    print(
                        f"round {round_ + 1:2}: {name:12} {run.requests_per_second:8.1f} req/s"
                        f" {run.cpu_ms_per_request:6.3f} CPU ms/request",
                        flush=True,
                    )
                with urllib.request.urlopen(f"{servers[ON].base}/metrics", timeout=5) as response:
                    assert b'cache="hit",method="GET",route="/api/articles"' in response.read()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return results


def report(results: dict[str, list[Run]], workers: int) -> None:
    def ratios(value: Callable[[Run], float]) -> list[float]:
        return sorted(value(on) / value(off) for on, off in zip(results[ON], results[OFF], strict=True))

    def spread(values: list[float]) -> str:
        quarter = len(values) // 4
        return f"{statistics.median(values):.4f} (middle half {values[quarter]:.4f} to {values[-1 - quarter]:.4f})"

    print(f"\ngunicorn -w {workers} (sync), wrk -t1 -c{2 * workers}, anonymous GET /api/articles, a cache hit")
    for name, runs in results.items():
        print(
            f"  {name:12} {statistics.median(map(rps, runs)):8.1f} req/s"
            f" {statistics.median(map(cpu, runs)):6.3f} CPU ms/request (medians)"
        )
    pooled_rps = sum(map(rps, results[ON])) / sum(map(rps, results[OFF]))
    pooled_cpu = sum(map(cpu, results[ON])) / sum(map(cpu, results[OFF]))
    print(f"  throughput on/off, per round:      {spread(ratios(rps))}; pooled {pooled_rps:.4f}")
    print(f"  CPU per request on/off, per round: {spread(ratios(cpu))}; pooled {pooled_cpu:.4f}")
    print(f"  => metrics cost a cache hit {100 * (1 - pooled_rps):.1f} % of its throughput (pooled)")


def taking_turns(requests: int, workers: int, repeats: int = 5) -> None:
    """Both servers serve the same hit in turn, request by request: CPU per request, and the throughput it costs.

    ``repeats`` stretches of ``requests`` hits per client, each measured on its own: the spread says how far
    one figure can be trusted on this machine.
    """
    work = Path(tempfile.mkdtemp(prefix="conduit-metrics-turns-"))
    spent = {OFF: 0.0, ON: 0.0}
    stretches: list[float] = []
    try:
        env = seeded(work)
        with ExitStack() as stack:
            servers = start_both(stack, env, work / "servers", workers)
            drive(servers, 100, 2, "warm-up", "/api/articles")  # every worker warm; the answer stored
            for _ in range(repeats):
                before = {name: server.cpu_seconds() for name, server in servers.items()}
                drive(servers, requests, 2, "run", "/api/articles")
                used = {name: server.cpu_seconds() - before[name] for name, server in servers.items()}
                stretches.append(used[ON] / used[OFF])
                for name in spent:
                    spent[name] += used[name]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    hits = 2 * requests * repeats
    each = {name: 1e6 * seconds / hits for name, seconds in spent.items()}
    print(f"\ntaking turns request by request, {hits} hits each from 2 clients, gunicorn -w {workers}:")
    print(f"  metrics off {each[OFF]:6.1f} µs CPU per hit; on {each[ON]:6.1f} µs")
    print(f"  CPU on/off in each of {repeats} stretches: {' '.join(f'{r:.3f}' for r in stretches)}")
    print(
        f"  the metrics add {each[ON] - each[OFF]:.1f} µs CPU per hit ({100 * (each[ON] / each[OFF] - 1):+.1f} %)"
        " (cold workers: not a throughput, see run 1)"
    )


def in_process(blocks: int = 20, block: int = 2000) -> None:
    """CPU µs per hit through create_app, metrics off and on (multiprocess mode), taking turns in blocks."""
    folder = Path(tempfile.mkdtemp(prefix="conduit-metrics-inproc-"))
    sys.path.insert(0, str(ROOT))
    import logging

    from service.app import create_app
    from service.config import Settings

    def settings(**extra: Any) -> Settings:
        return Settings(
            env="testing",
            secret_key="x" * 48,
            database_url=f"sqlite:///{folder}/c.db",
            instance_path=folder,
            ratelimit_enabled=False,
            cache_min_uses=1,
            auto_migrate=True,
            **extra,
        )

    apps = {
        OFF: create_app(settings()),
        ON: create_app(settings(metrics_allow=("127.0.0.1",), metrics_dir=str(folder / "metrics"))),
    }
    logging.getLogger("service").setLevel(logging.WARNING)
    environ = EnvironBuilder("/api/articles", environ_base={"REMOTE_ADDR": "127.0.0.1"}).get_environ()

    def hits(app: Any, n: int) -> float:
        started = time.process_time()
        for _ in range(n):
            body = app(dict(environ), lambda status, headers, exc_info=None: None)
            b"".join(body)
            getattr(body, "close", lambda: None)()
        return time.process_time() - started

    for app in apps.values():
        hits(app, 500)
    spent = {OFF: 0.0, ON: 0.0}
    for n in range(blocks):
        for name in (OFF, ON) if n % 2 == 0 else (ON, OFF):
            spent[name] += hits(apps[name], block)
    each = {name: 1e6 * seconds / (blocks * block) for name, seconds in spent.items()}
    print(f"\nin-process, {blocks * block} hits each, taking turns in blocks of {block}:")
    added = each[ON] - each[OFF]
    print(f"  metrics off {each[OFF]:6.1f} µs CPU per hit; on {each[ON]:6.1f} µs; the metrics add {added:.1f} µs")
    shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1) + 1)
    parser.add_argument("--scrape-every", type=float, default=15.0, help="seconds between scrapes")
    parser.add_argument("--requests", type=int, default=1000, help="hits per server, client and stretch, taking turns")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    results = under_gunicorn(args.rounds, args.seconds, args.workers, args.scrape_every)
    report(results, args.workers)
    print(f"  (a scrape at the start of each metrics-on run, then every {args.scrape_every:g} s)")
    taking_turns(args.requests, args.workers)
    in_process()


if __name__ == "__main__":
    main()
