"""CPU time per request under gunicorn, the configurations taking turns request by request.

``throughput.py`` asks the question as the issue does (requests per second
under wrk), but on this shared machine one run of it moves by about 5 points
from the next: each configuration runs for seconds while the machine's speed
drifts. Here every configuration's gunicorn (production settings, as in
``throughput.py``) serves one request, then the next configuration's does, and
so on, from two clients at once (both cores busy), every request a URL never
asked before; the CPU time that each server's workers and its redis-server
spent is read from the scheduler's nanosecond clock. Drift then hits every
configuration alike. With the host's CPUs saturated, requests per second are
inversely proportional to CPU time per request, so the cost in throughput is
``1 - bare / configuration``.

Usage: python bench/interleaved.py [--requests 2000] [--only redis]
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit

# The sibling script (bench/ is on the path when this one runs): the same seed, servers and configurations.
from throughput import BARE, CONFIGS, Server, seeded, settle, start, wait_for


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per configuration and client")
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1) + 1, help="default: as in production")
    parser.add_argument("--only", default="", help="only the configurations whose name contains this (and bare)")
    args = parser.parse_args()
    if shutil.which("redis-server") is None:
        sys.exit("redis-server is needed: apt-get install redis-server")
    configs = {
        name: config
        for name, config in CONFIGS.items()
        if config.misses and (name == BARE or args.only in name)  # hits: see throughput.py
    }
    work = Path(tempfile.mkdtemp(prefix="conduit-interleaved-"))
    try:
        env = seeded(work)
        with ExitStack() as stack:
            servers = start(stack, configs, env, work / "servers", args.workers)
            for server in servers.values():
                wait_for(f"{server.base}/healthz")
            settle(list(servers.values()))
            drive(servers, 50, args.clients, "warm-up")  # every worker: imports, pools, page cache
            cpu = {name: server.cpu_seconds() for name, server in servers.items()}
            app = {name: server.cpu_seconds(helpers=False) for name, server in servers.items()}
            wall = drive(servers, args.requests, args.clients, "run")
            cpu = {name: server.cpu_seconds() - cpu[name] for name, server in servers.items()}
            app = {name: server.cpu_seconds(helpers=False) - app[name] for name, server in servers.items()}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    requests = args.requests * args.clients
    print(f"gunicorn -w {args.workers} (sync), {requests} anonymous GET /api/articles per configuration, every one")
    print("a miss, the configurations taking turns request by request")
    print("\nall on one host (the workers and the configuration's own redis-server):")
    report(cpu, wall, requests)
    print("\nthe application's host alone (the workers; Redis on a host of its own, as with several hosts):")
    report(app, wall, requests)


def drive(
    servers: dict[str, Server], requests: int, clients: int, tag: str, path: str | None = None
) -> dict[str, list[float]]:
    """``requests`` rounds from each of ``clients`` threads, one request per server per round, in shuffled order.

    :param path: the URL every request asks for (a cache hit once stored); by default a new one each time (a miss).

    :returns: the wall-clock seconds of every request, per server.
    """
    wall: dict[str, list[float]] = {name: [] for name in servers}
    failures: list[BaseException] = []

    def client(number: int) -> None:
        order = list(servers)
        shuffler = random.Random(number)
        try:
            for round_ in range(requests):
                shuffler.shuffle(order)
                for name in order:
                    url = urlsplit(servers[name].base)
                    started = time.perf_counter()
                    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=30)
                    connection.request("GET", path or f"/api/articles?nocache={tag}-{number}-{round_}")
                    response = connection.getresponse()
                    response.read()
                    connection.close()
                    if response.status != 200:
                        raise RuntimeError(f"{name}: {response.status}")
                    wall[name].append(time.perf_counter() - started)
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    threads = [threading.Thread(target=client, args=(number,)) for number in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return wall


def report(cpu: dict[str, float], wall: dict[str, list[float]], requests: int) -> None:
    """CPU per request and median latency of each configuration, and both against bare's."""
    bare_cpu = cpu[BARE] / requests
    bare_wall = statistics.median(wall[BARE])
    for name in cpu:
        per_request = cpu[name] / requests
        latency = statistics.median(wall[name])
        line = f"  {name:31} CPU {1000 * per_request:6.3f} ms/request, median latency {1000 * latency:6.2f} ms"
        if name != BARE:
            line += (
                f"; CPU {100 * (per_request / bare_cpu - 1):+5.1f} %,"
                f" throughput {100 * (1 - bare_cpu / per_request):5.1f} % lower,"
                f" latency {100 * (latency / bare_wall - 1):+5.1f} %"
            )
        print(line)


if __name__ == "__main__":
    main()
