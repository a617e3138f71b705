"""Throughput of anonymous GET /api/articles with the middleware off and on, as ratios.

One run, one machine: seeds a SQLite database (1 000 users, 5 000 articles),
then, every round, starts one gunicorn per configuration with the production
settings (``service.gunicorn_conf``: sync workers, 2 x cores + 1 of them; only
worker recycling is off, so that no restart lands in a measurement), each with
its own instance folder and, where it uses Redis, its own redis-server; waits
until all have booted, warms each up, and drives them with wrk in a shuffled
order. Fresh servers every round, because a worker process keeps its own speed
for its life (by a few per cent): with servers started once, one configuration
was favoured in every round. Each configuration is compared with the bare
baseline *of the same round*; the median of those per-round ratios is reported
with its middle half, and the ratio of the sums over all rounds, so the
machine's drift hits both sides of a ratio alike. Beside requests per second
it reports the CPU time the server (and its redis-server) spent per request,
read from /proc. Needs wrk and redis-server (Debian packages).

Configurations (every "miss" request asks for a URL never asked before):

- bare: rate limiting off, cache off (the uncached baseline)
- limiter: rate limiting on, cache off (host-local SQLite file, or Redis)
- both, misses: rate limiting and cache on, every request a miss (looked up;
  not stored, as the default ``CONDUIT_CACHE_MIN_USES=2`` keeps one-off URLs out)
- both, misses stored: the same with every miss stored (``CONDUIT_CACHE_MIN_USES=1``),
  the cost of a miss of a popular URL
- both, hits: the same URL again and again

Usage: python bench/throughput.py [--seconds 3] [--rounds 15] [--workers N] [--only redis]
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
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
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
BARE = "bare (no rate limit, no cache)"


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


@dataclass
class Server:
    """A running gunicorn: where it answers, and the processes whose CPU time a request costs."""

    base: str
    master: int
    helpers: tuple[int, ...]  # e.g. redis-server, for the configurations that use it

    def cpu_seconds(self, helpers: bool = True) -> float:
        """CPU time so far of the workers (and the helpers), all their threads (the scheduler's nanosecond clock)."""
        children = Path(f"/proc/{self.master}/task/{self.master}/children").read_text().split()
        total = 0
        for pid in (*children, *map(str, self.helpers if helpers else ())):
            for task in Path(f"/proc/{pid}/task").iterdir():
                total += int((task / "schedstat").read_text().split()[0])  # nanoseconds on a CPU
        return total / 1e9


@contextmanager
def gunicorn(env: dict[str, str], workers: int, helpers: tuple[int, ...]) -> Iterator[Server]:
    """gunicorn with the production settings serving the app with ``env`` (maybe not answering yet)."""
    port = free_port()
    argv = [sys.executable, "-m", "gunicorn", "-c", "python:service.gunicorn_conf", "wsgi:application"]
    env = {**env, "CONDUIT_BIND": f"127.0.0.1:{port}", "CONDUIT_WORKERS": str(workers), "CONDUIT_MAX_REQUESTS": "0"}
    with open(os.devnull, "wb") as sink:
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=sink, stderr=sink)
    try:
        yield Server(f"http://127.0.0.1:{port}", process.pid, helpers)
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextmanager
def redis_server() -> Iterator[tuple[str, int]]:
    """A redis-server of its own, empty, not saving: its URL and process id."""
    port = free_port()
    argv = ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0", process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


def settle(servers: list[Server], idle: float = 0.05, every: float = 0.5, seconds: float = 120) -> None:
    """Wait until ``servers`` use less than ``idle`` of a CPU (a worker answers before its siblings have booted)."""
    deadline = time.monotonic() + seconds
    used = sum(server.cpu_seconds() for server in servers)
    while time.monotonic() < deadline:
        time.sleep(every)
        used, before = sum(server.cpu_seconds() for server in servers), used
        if used - before < idle * every:
            return
    raise RuntimeError("the servers did not settle")


@dataclass
class Run:
    requests_per_second: float
    cpu_ms_per_request: float


def rps(run: Run) -> float:
    return run.requests_per_second


def cpu(run: Run) -> float:
    return run.cpu_ms_per_request


def run_wrk(argv: list[str], cpu_seconds: Callable[[], float]) -> tuple[str, float, float]:
    """Run wrk; any error response fails the run.

    :param cpu_seconds: the server's CPU time so far, read before and after.
    :returns: wrk's output, requests per second, and the server's CPU milliseconds per request.
    """
    before = cpu_seconds()
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    cpu = cpu_seconds() - before
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"errors during {' '.join(argv)}:\n{out}")
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return out, rps, 1000 * cpu / requests


def wrk(server: Server, lua: Path | None, seconds: int, connections: int) -> Run:
    """Drive ``server`` for ``seconds`` with ``connections`` connections on one wrk thread."""
    url = server.base + "/api/articles"
    script = ["-s", str(lua), url, "--", uuid.uuid4().hex] if lua else [url]
    _, rps, cpu_ms = run_wrk(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", *script], server.cpu_seconds)
    return Run(rps, cpu_ms)


def seeded(work: Path) -> dict[str, str]:
    """The servers' environment: development settings with no limit reached, on a SQLite database in
    ``work`` seeded with 1 000 users and 5 000 articles."""
    env = {
        **os.environ,
        "CONDUIT_INSTANCE_PATH": str(work / "instance"),
        "CONDUIT_ENV": "development",
        "CONDUIT_LOG_LEVEL": "WARNING",
        "CONDUIT_RATELIMIT_DEFAULT": NEVER_LIMITED,
    }
    seed(env)
    env["CONDUIT_DATABASE_URL"] = f"sqlite:///{work / 'instance' / 'conduit.db'}"
    return env


def seed(env: dict[str, str]) -> None:
    conduit = str(Path(sys.executable).parent / "conduit")
    subprocess.run([conduit, "db", "upgrade"], env=env, check=True, capture_output=True)
    seed_args = ["seed", "--users", "1000", "--articles", "5000", "--seed", "1"]
    subprocess.run([conduit, *seed_args], env=env, check=True, capture_output=True)


@dataclass(frozen=True)
class Config:
    """One way of running the service: its settings, and what wrk asks of it."""

    env: dict[str, str]
    #: settings pointed at a redis-server of this configuration's own
    redis: tuple[str, ...] = ()
    #: every request a URL never asked before (else the same URL again and again)
    misses: bool = True


_NO_CACHE = {"CONDUIT_CACHE_URL": "null"}
_STORE_ALL = {"CONDUIT_CACHE_MIN_USES": "1"}  # every miss stored, as if each URL were popular
_LIMITER = ("CONDUIT_RATELIMIT_STORAGE_URI",)
_BOTH = ("CONDUIT_RATELIMIT_STORAGE_URI", "CONDUIT_CACHE_URL")
CONFIGS = {
    BARE: Config({"CONDUIT_RATELIMIT_ENABLED": "false", **_NO_CACHE}),
    "limiter only, host-local": Config(_NO_CACHE),
    "limiter only, redis": Config(_NO_CACHE, _LIMITER),
    "both, host-local, misses": Config({}),
    "both, redis, misses": Config({}, _BOTH),
    "both, host-local, misses stored": Config(_STORE_ALL),
    "both, redis, misses stored": Config(_STORE_ALL, _BOTH),
    "both, host-local, hits": Config({}, misses=False),
    "both, redis, hits": Config({}, _BOTH, misses=False),
}


def start(
    stack: ExitStack, configs: dict[str, Config], env: dict[str, str], work: Path, workers: int
) -> dict[str, Server]:
    """A fresh server for every configuration, each with its own instance folder and its own Redis.

    Fresh every round: a worker process keeps its own speed for its lifetime
    (hash seed, memory layout), by a few per cent, which would otherwise favour
    one configuration in every round. Its own Redis: the CPU that Redis spends
    in the background (expiring another configuration's entries) is not
    charged to this one.
    """
    servers = {}
    for index, (name, config) in enumerate(configs.items()):
        own = {**env, **config.env, "CONDUIT_INSTANCE_PATH": str(work / str(index))}
        helpers: tuple[int, ...] = ()
        if config.redis:
            url, pid = stack.enter_context(redis_server())
            own.update(dict.fromkeys(config.redis, url))
            helpers = (pid,)
        servers[name] = stack.enter_context(gunicorn(own, workers, helpers))
    return servers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=3, help="length of one wrk run")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1) + 1, help="default: as in production")
    parser.add_argument(
        "--only", default="", help="run only the configurations whose name contains this (and the baseline)"
    )
    args = parser.parse_args()
    for tool in ("wrk", "redis-server"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is needed: apt-get install {tool}")
    work = Path(tempfile.mkdtemp(prefix="conduit-bench-"))
    lua = work / "miss.lua"
    lua.write_text(MISS_LUA)
    base_env = seeded(work)
    configs = {name: config for name, config in CONFIGS.items() if name == BARE or args.only in name}
    connections = 2 * args.workers
    results: dict[str, list[Run]] = {name: [] for name in configs}
    shuffler = random.Random(1)
    try:
        for round_ in range(args.rounds):
            with ExitStack() as stack:
                servers = start(stack, configs, base_env, work / f"round-{round_}", args.workers)
                for server in servers.values():
                    wait_for(f"{server.base}/healthz")
                settle(list(servers.values()))  # every worker of every server booted
                for name, server in servers.items():
                    wrk(server, lua if configs[name].misses else None, 2, connections)  # warm up every worker
                order = list(configs)
                shuffler.shuffle(order)  # no configuration always runs first (or last)
                for name in order:
                    run = wrk(servers[name], lua if configs[name].misses else None, args.seconds, connections)
                    results[name].append(run)
                    print(
                        f"round {round_ + 1:2}: {name:31} {run.requests_per_second:8.1f} req/s"
                        f" {run.cpu_ms_per_request:6.2f} CPU ms/request",
                        flush=True,
                    )
            shutil.rmtree(work / f"round-{round_}", ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\ngunicorn -w {args.workers} (sync), wrk -t1 -c{connections}, anonymous GET /api/articles")
    report(results)


def report(results: dict[str, list[Run]]) -> None:
    """Medians, and each configuration against the baseline as a per-round ratio (median, range)."""

    def paired(name: str, baseline: str, value: Callable[[Run], float]) -> list[float]:
        pairs = zip(results[name], results[baseline], strict=True)
        return sorted(value(run) / value(base) for run, base in pairs)

    print(f"  {'':31} {'req/s':>8} {'CPU ms/req':>11}   (medians over rounds)")
    for name, runs in results.items():
        print(f"  {name:31} {statistics.median(map(rps, runs)):8.1f} {statistics.median(map(cpu, runs)):11.2f}")

    def spread(sorted_costs: list[float]) -> str:
        quarter = len(sorted_costs) // 4
        low, high = sorted_costs[quarter], sorted_costs[-1 - quarter]
        return f"{statistics.median(sorted_costs):5.1f} % (middle half {low:.1f} to {high:.1f})"

    def pooled(name: str, value: Callable[[Run], float]) -> float:
        """The ratio of the sums over every round: one figure that no single round dominates."""
        return sum(map(value, results[name])) / sum(map(value, results[BARE]))

    print("\ncost of the middleware against the bare baseline of the same round (median over rounds):")
    for name in results:
        if name == BARE or name.endswith("hits"):
            continue
        fewer = [100 * (1 - r) for r in reversed(paired(name, BARE, rps))]
        more_cpu = [100 * (r - 1) for r in paired(name, BARE, cpu)]
        print(f"  {name:31} throughput {spread(fewer)} lower; CPU per request {spread(more_cpu)} higher")
    print("\nthe same, pooled (sums over all rounds):")
    for name in results:
        if name == BARE or name.endswith("hits"):
            continue
        print(
            f"  {name:31} throughput {100 * (1 - pooled(name, rps)):5.1f} % lower;"
            f" CPU per request {100 * (pooled(name, cpu) - 1):5.1f} % higher"
        )
    print("\ncache hits against misses of the same round:")
    for storage in ("host-local", "redis"):
        hits, misses = f"both, {storage}, hits", f"both, {storage}, misses"
        if hits not in results or misses not in results:
            continue
        speedup = paired(hits, misses, rps)
        print(
            f"  {storage:31} {statistics.median(speedup):5.2f} x the requests/second"
            f" ({speedup[0]:.2f} to {speedup[-1]:.2f})"
        )


if __name__ == "__main__":
    main()
