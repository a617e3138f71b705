"""Throughput of GET /api/articles (anonymous) with the middleware off and on, as ratios.

One run, one machine: seeds a SQLite database (1 000 users, 5 000 articles), then
for each configuration starts ``gunicorn -w 2`` and drives it with wrk; the
configurations alternate over several rounds and the median is reported, so
machine noise hits them alike. Needs wrk and redis-server (Debian packages).

- bare: rate limiting off, no cache (the uncached baseline)
- middleware (host-local): limits on a SQLite file + filesystem cache, every request a miss
- middleware (redis): limits and cache on Redis, every request a miss
- cache hit (host-local / redis): the same URL again and again

Usage: python bench/throughput.py [--seconds 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: wrk script giving every request its own cache key (an ignored query parameter), so each one
#: misses; the run id (a script argument) keeps keys unique across warm-ups, runs and rounds.
MISS_LUA = """
counter = 0
init = function(args) run = args[1] end
request = function()
  counter = counter + 1
  return wrk.format("GET", "/api/articles?nocache=" .. run .. "-" .. counter)
end
"""
NEVER_LIMITED = "1000000000/minute"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def run_config(env: dict[str, str], path: str, lua: Path | None, seconds: int) -> float:
    port = free_port()
    argv = [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", "wsgi:application"]
    with open(os.devnull, "wb") as sink:
        server = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=sink, stderr=sink)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(f"{base}/healthz")
        script = ["-s", str(lua)] if lua else []

        def wrk(duration: int) -> str:
            run_id = ["--", uuid.uuid4().hex] if lua else []
            argv = ["wrk", *script, "-t1", "-c4", f"-d{duration}s", base + path, *run_id]
            return subprocess.run(argv, capture_output=True, text=True, check=True).stdout

        wrk(2)  # warm up both workers (imports, pools, caches, page cache)
        out = wrk(seconds)
        if "Non-2xx" in out:
            raise RuntimeError(f"errors during the run:\n{out}")
        return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for tool in ("wrk", "redis-server"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is needed: apt-get install {tool}")
    work = Path(tempfile.mkdtemp(prefix="conduit-bench-"))
    redis_port = free_port()
    redis = subprocess.Popen(
        ["redis-server", "--port", str(redis_port), "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL
    )
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    lua = work / "miss.lua"
    lua.write_text(MISS_LUA)
    base_env = {
        **os.environ,
        "CONDUIT_INSTANCE_PATH": str(work / "instance"),
        "CONDUIT_ENV": "development",
        "CONDUIT_LOG_LEVEL": "WARNING",
        "CONDUIT_RATELIMIT_DEFAULT": NEVER_LIMITED,
    }
    conduit = str(Path(sys.executable).parent / "conduit")
    subprocess.run([conduit, "db", "upgrade"], env=base_env, check=True, capture_output=True)
    subprocess.run(
        [conduit, "seed", "--users", "1000", "--articles", "5000", "--seed", "1"],
        env=base_env,
        check=True,
        capture_output=True,
    )
    on_redis = {"CONDUIT_RATELIMIT_STORAGE_URI": redis_url, "CONDUIT_CACHE_URL": redis_url}
    configs = {
        "bare (no rate limit, no cache)": ({"CONDUIT_RATELIMIT_ENABLED": "false", "CONDUIT_CACHE_URL": "null"}, lua),
        "middleware, host-local, misses": ({}, lua),
        "middleware, redis, misses": (on_redis, lua),
        "cache hits, host-local": ({}, None),
        "cache hits, redis": (on_redis, None),
    }
    results: dict[str, list[float]] = {name: [] for name in configs}
    try:
        shuffler = random.Random(1)
        for round_ in range(args.rounds):
            order = list(configs.items())
            shuffler.shuffle(order)  # no configuration always runs first (or last)
            for name, (overrides, script) in order:
                rps = run_config({**base_env, **overrides}, "/api/articles", script, args.seconds)
                results[name].append(rps)
                print(f"round {round_ + 1}: {name:34} {rps:8.1f} req/s", flush=True)
    finally:
        redis.terminate()
        shutil.rmtree(work, ignore_errors=True)
    median = {name: statistics.median(values) for name, values in results.items()}
    bare_name = "bare (no rate limit, no cache)"
    print("\nmedian requests/second (gunicorn -w 2, wrk -t1 -c4, GET /api/articles, anonymous)")
    for name, rps in median.items():
        print(f"  {name:34} {rps:8.1f}")

    def paired(name: str, baseline: str) -> float:
        # Each round compares configurations run minutes apart on the same machine;
        # the median of those per-round ratios is steadier than a ratio of medians.
        return statistics.median(a / b for a, b in zip(results[name], results[baseline], strict=True))

    print("\nratios (median over rounds of the ratio within each round):")
    for storage in ("host-local", "redis"):
        miss, hit = f"middleware, {storage}, misses", f"cache hits, {storage}"
        print(
            f"  {storage:10}  middleware cost on a miss: {100 * (1 - paired(miss, bare_name)):5.1f}% of bare"
            f"   cache hit vs miss: {paired(hit, miss):5.2f} x faster"
        )


if __name__ == "__main__":
    main()
