"""Milliseconds the middleware adds to one anonymous GET /api/articles, measured in-process.

The complement of ``throughput.py``: no HTTP server, no wrk, no second worker
competing for the two cores, so far less noise. One app per configuration is
built from the same seeded SQLite database (1 000 users, 5 000 articles); the
configurations take turns request by request, every request a cache miss (a
query string never asked before), and the median time per request of each is
compared with the bare app's. Needs redis-server (Debian package).

Usage: python bench/overhead.py [--requests 2000]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

# The sibling script (bench/ is on the path when this one runs): the same seed, ports and limits.
from throughput import NEVER_LIMITED, redis_server, seed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="timed requests per configuration")
    args = parser.parse_args()
    if shutil.which("redis-server") is None:
        sys.exit("redis-server is needed: apt-get install redis-server")
    work = Path(tempfile.mkdtemp(prefix="conduit-overhead-"))
    os.environ.update(
        CONDUIT_INSTANCE_PATH=str(work / "instance"),
        CONDUIT_ENV="development",
        CONDUIT_LOG_LEVEL="WARNING",
        CONDUIT_RATELIMIT_DEFAULT=NEVER_LIMITED,
    )
    try:
        seed(dict(os.environ))
        with redis_server() as (redis_url, _):
            measure(redis_url, args.requests)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure(redis_url: str, requests: int) -> None:
    from werkzeug.test import EnvironBuilder

    from service.app import create_app
    from service.config import Settings

    base = Settings.from_env()
    no_cache = {"cache_url": "null"}
    on_redis = {"ratelimit_storage_uri": redis_url, "cache_url": redis_url}
    configs: dict[str, dict[str, Any]] = {
        "bare": {"ratelimit_enabled": False, **no_cache},
        "limiter only, host-local": no_cache,
        "limiter only, redis": {**on_redis, **no_cache},
        "both, host-local, misses": {},
        "both, redis, misses": on_redis,
        "both, host-local, stored": {"cache_min_uses": 1},
        "both, redis, stored": {**on_redis, "cache_min_uses": 1},
    }
    apps = {name: create_app(dataclasses.replace(base, **changes)) for name, changes in configs.items()}

    def call(app: Any) -> tuple[float, float]:
        environ = EnvironBuilder(path="/api/articles", query_string=f"nocache={uuid.uuid4().hex}").get_environ()
        environ["REMOTE_ADDR"] = "127.0.0.1"
        statuses: list[str] = []
        started, cpu_started = time.perf_counter(), time.thread_time()
        b"".join(app(environ, lambda status, headers, exc_info=None: statuses.append(status)))
        elapsed, cpu = time.perf_counter() - started, time.thread_time() - cpu_started
        assert statuses[0].startswith("200"), statuses
        return elapsed, cpu

    for app in apps.values():
        for _ in range(50):
            call(app)  # warm up: imports, pools, prepared statements
    wall: dict[str, list[float]] = {name: [] for name in apps}
    cpu: dict[str, list[float]] = {name: [] for name in apps}
    for _ in range(requests):
        for name, app in apps.items():  # request by request, so drift hits every configuration alike
            elapsed, used = call(app)
            wall[name].append(elapsed)
            cpu[name].append(used)
    print(f"median per request over {requests} requests each (anonymous GET /api/articles, every one a miss,")
    print("stored only where it says so); wall-clock time includes waiting for Redis, CPU time is this process's")
    for label, times in (("wall-clock", wall), ("CPU", cpu)):
        bare = statistics.median(times["bare"])
        for name, values in times.items():
            median = statistics.median(values)
            extra = f"  +{1000 * (median - bare):.3f} ms = {100 * (median / bare - 1):5.1f} %" if name != "bare" else ""
            print(f"  {label:10} {name:26} {1000 * median:7.3f} ms{extra}")


if __name__ == "__main__":
    main()
