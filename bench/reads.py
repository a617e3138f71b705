"""Uncached and cached reads against the physical limit, in one interleaved pass.

Three servers, each ``gunicorn -w 2`` (sync workers) against one PostgreSQL with
the same seeded data (``conduit seed``: 50 users, 1 000 articles by default):

- **raw**: ``bench/raw_app.py``, a bare WSGI app answering each read with ONE raw
  psycopg query and the same JSON shape: the physical limit;
- **hello**: ``bench/hello_app.py``, a fixed body: gunicorn's own limit;
- **service**: ``wsgi:application`` with rate limiting off, once with the cache
  off (``CONDUIT_CACHE_URL=null``) and once with it on (the host-local default).

Every round drives every (endpoint, server) pair with wrk (``-t1 -c8``) in a
shuffled order, so the machine's drift hits all alike; each ratio is taken
against raw *in the same round*, and the median over rounds is reported with
requests per second, the workers' CPU per request (the scheduler's clock, from
/proc) and wrk's p50 and p99. Signed-in reads carry a seeded user's token; the
signed-in list is compared with raw's anonymous list. The workers' memory is
read before and after.

Needs wrk and PostgreSQL's server binaries (Debian: wrk, postgresql-15).
Usage: python bench/reads.py [--seconds 3] [--rounds 3] [--connections 8] [--articles 1000] [--before PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.throughput import free_port, run_wrk, wait_for  # noqa: E402
from tests import pg  # noqa: E402

#: Endpoints: name -> (path template, signed in?, raw's reference endpoint).
ENDPOINTS = {
    "article": ("/api/articles/{slug}", False, "article"),
    "list": ("/api/articles", False, "list"),
    "tag filter": ("/api/articles?tag={tag}", False, "tag filter"),
    "tags": ("/api/tags", False, "tags"),
    "profile": ("/api/profiles/{username}", False, "profile"),
    "comments": ("/api/articles/{slug}/comments", False, "comments"),
    "feed (token)": ("/api/articles/feed", True, "feed (token)"),
    "list (token)": ("/api/articles", True, "list"),
}


@dataclass
class Server:
    """A running gunicorn: where it answers, and its master's pid (its workers are the children)."""

    name: str
    base: str
    master: int

    def workers(self) -> list[str]:
        return Path(f"/proc/{self.master}/task/{self.master}/children").read_text().split()

    def cpu_seconds(self) -> float:
        total = 0
        for pid in self.workers():
            for task in Path(f"/proc/{pid}/task").iterdir():
                total += int((task / "schedstat").read_text().split()[0])
        return total / 1e9

    def rss_mb(self) -> float:
        kb = 0
        for pid in self.workers():
            status = Path(f"/proc/{pid}/status").read_text()
            kb += int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
        return kb / 1024


@contextmanager
def gunicorn(name: str, app: str, env: dict[str, str], chdir: Path = ROOT) -> Iterator[Server]:
    port = free_port()
    argv = [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", "--chdir", str(chdir), app]
    with open(os.devnull, "wb") as sink:
        # Started in the checkout it serves: `python -m` puts the start folder first on the path.
        process = subprocess.Popen(argv, cwd=chdir, env=env, stdout=sink, stderr=sink)
    try:
        yield Server(name, f"http://127.0.0.1:{port}", process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)


@dataclass
class Sample:
    rps: float
    cpu_ms: float
    p50_ms: float
    p99_ms: float


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def drive(server: Server, path: str, token: str | None, seconds: int, connections: int) -> Sample:
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", server.base + path]
    if token:
        argv[1:1] = ["-H", f"Authorization: Token {token}"]
    out, rps, cpu_ms = run_wrk(argv, server.cpu_seconds)
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    return Sample(rps, cpu_ms, p50, p99)


@dataclass
class Results:
    samples: dict[tuple[str, str], list[Sample]] = field(default_factory=dict)
    ratios: dict[tuple[str, str], list[float]] = field(default_factory=dict)


def seed(url: str, users: int, articles: int, env: dict[str, str]) -> dict[str, str]:
    """Seed the database; return the values the endpoints need (a slug with comments, a tag, a name)."""
    conduit = str(Path(sys.executable).parent / "conduit")
    subprocess.run([conduit, "db", "upgrade"], env=env, check=True, capture_output=True)
    subprocess.run(
        [conduit, "seed", "--users", str(users), "--articles", str(articles), "--seed", "7"],
        env=env,
        check=True,
        capture_output=True,
    )
    with psycopg.connect(url.replace("+psycopg", "")) as connection:
        slug = connection.execute(
            "SELECT a.slug FROM articles a JOIN comments c ON c.article_id = a.id"
            " GROUP BY a.slug ORDER BY count(*) DESC, a.slug LIMIT 1"
        ).fetchone()[0]  # type: ignore[index]
        tag = connection.execute(
            "SELECT t.name FROM tags t JOIN article_tags x ON x.tag_id = t.id GROUP BY t.name"
            " ORDER BY count(*) DESC, t.name LIMIT 1"
        ).fetchone()[0]  # type: ignore[index]
        username, email = connection.execute(
            "SELECT u.username, u.email FROM users u JOIN follows f ON f.follower_id = u.id"
            " GROUP BY u.id ORDER BY count(*) DESC, u.id LIMIT 1"
        ).fetchone()  # type: ignore[misc]
    return {"slug": slug, "tag": tag, "username": username, "email": email}


def login(base: str, email: str) -> str:
    body = json.dumps({"user": {"email": email, "password": "seeded-password"}}).encode()
    request = urllib.request.Request(
        base + "/api/users/login", data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return str(json.load(response)["user"]["token"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--articles", type=int, default=1000)
    parser.add_argument(
        "--before", type=Path, help="also serve this checkout (a worktree of an older commit), cache off and on"
    )
    args = parser.parse_args()

    binaries = pg.bindir()
    if binaries is None:
        sys.exit("PostgreSQL's server binaries are needed (apt-get install postgresql-15)")
    with ExitStack() as stack:
        cluster = stack.enter_context(pg.private_cluster(binaries))
        instance = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        secret = secrets.token_urlsafe(48)
        base_env = {
            **os.environ,
            "CONDUIT_ENV": "production",
            "CONDUIT_SECRET_KEY": secret,
            "CONDUIT_DATABASE_URL": cluster.url,
            "CONDUIT_RATELIMIT_ENABLED": "false",
            # The request log stays on, as in production (its lines go to the null device with gunicorn's).
            "CONDUIT_LOG_LEVEL": "INFO",
            "RAW_DATABASE_URL": cluster.url.replace("+psycopg", ""),
            "RAW_SECRET_KEY": secret,
        }
        values = seed(cluster.url, args.users, args.articles, {**base_env, "CONDUIT_INSTANCE_PATH": str(instance)})
        servers = [
            stack.enter_context(gunicorn("raw", "raw_app:application", base_env, ROOT / "bench")),
            stack.enter_context(gunicorn("hello", "hello_app:application", base_env, ROOT / "bench")),
            stack.enter_context(
                gunicorn(
                    "service, cache off",
                    "wsgi:application",
                    {**base_env, "CONDUIT_CACHE_URL": "null", "CONDUIT_INSTANCE_PATH": str(instance / "off")},
                )
            ),
            stack.enter_context(
                gunicorn(
                    "service, cache on",
                    "wsgi:application",
                    {**base_env, "CONDUIT_CACHE_URL": "sqlitefile", "CONDUIT_INSTANCE_PATH": str(instance / "on")},
                )
            ),
        ]
        if args.before is not None:
            for cache in ("off", "on"):
                env = {
                    **base_env,
                    "CONDUIT_CACHE_URL": "null" if cache == "off" else "sqlitefile",
                    "CONDUIT_INSTANCE_PATH": str(instance / f"before-{cache}"),
                }
                servers.append(
                    stack.enter_context(gunicorn(f"before, cache {cache}", "wsgi:application", env, args.before))
                )
        for server in servers:
            wait_for(server.base + ("/api/tags" if server.name in ("raw", "hello") else "/healthz"))
        token = login(servers[2].base, values["email"])
        rss_before = {server.name: server.rss_mb() for server in servers}
        results = Results()
        pairs = [(name, server) for name in ENDPOINTS for server in servers if server.name != "hello"]
        pairs.append(("hello", servers[1]))
        for pair_name, server in pairs:  # warm-up: statements prepared, caches filled
            template, signed_in, _ = ENDPOINTS.get(pair_name, ("/", False, ""))
            drive(server, template.format(**values), token if signed_in else None, 1, args.connections)
        for round_number in range(args.rounds):
            random.shuffle(pairs)
            this_round: dict[tuple[str, str], Sample] = {}
            for pair_name, server in pairs:
                template, signed_in, _ = ENDPOINTS.get(pair_name, ("/", False, ""))
                sample = drive(server, template.format(**values), token if signed_in else None, args.seconds, 8)
                this_round[(pair_name, server.name)] = sample
                results.samples.setdefault((pair_name, server.name), []).append(sample)
            for (pair_name, name), sample in this_round.items():
                if pair_name == "hello":
                    continue
                raw = this_round[(ENDPOINTS[pair_name][2], "raw")]
                results.ratios.setdefault((pair_name, name), []).append(sample.rps / raw.rps)
                if name.endswith("cache on"):
                    hello = this_round[("hello", "hello")]
                    results.ratios.setdefault((pair_name, f"{name} vs hello"), []).append(sample.rps / hello.rps)
            print(f"round {round_number + 1} of {args.rounds} done", file=sys.stderr)
        rss_after = {server.name: server.rss_mb() for server in servers}

    print(f"{args.rounds} rounds of {args.seconds} s, wrk -t1 -c{args.connections}, gunicorn -w 2, PostgreSQL")
    print(f"{args.users} users, {args.articles} articles; medians over rounds; ratios against raw in the same round")
    print()
    print("| endpoint | server | req/s | ratio to raw | CPU ms/req | p50 ms | p99 ms |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    endpoint_order = [*ENDPOINTS, "hello"]
    server_order = [server.name for server in servers]
    for (pair_name, name), samples in sorted(
        results.samples.items(), key=lambda item: (endpoint_order.index(item[0][0]), server_order.index(item[0][1]))
    ):
        ratio = results.ratios.get((pair_name, name))
        cells = [
            pair_name,
            name,
            f"{statistics.median(s.rps for s in samples):.0f}",
            f"{statistics.median(ratio):.2f}" if ratio else "",
            f"{statistics.median(s.cpu_ms for s in samples):.2f}",
            f"{statistics.median(s.p50_ms for s in samples):.1f}",
            f"{statistics.median(s.p99_ms for s in samples):.1f}",
        ]
        print("| " + " | ".join(cells) + " |")
    print()
    for pair_name in ENDPOINTS:
        for name in (server.name for server in servers if server.name.endswith("cache on")):
            hello_ratio = results.ratios.get((pair_name, f"{name} vs hello"))
            if hello_ratio:
                print(f"{name}, {pair_name}: {statistics.median(hello_ratio):.2f} of hello-world")
    print()
    for name, before in rss_before.items():
        print(f"workers' memory, {name}: {before:.0f} MB before, {rss_after[name]:.0f} MB after")


if __name__ == "__main__":
    main()
