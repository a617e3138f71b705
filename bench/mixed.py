"""The response cache while people write: hit share and reads/s under mixed traffic.

A site people use: anonymous readers ask for the pages a front end reads, with
Zipf popularity, while one client writes at a steady rate. One PostgreSQL
seeded by ``conduit seed`` (50 users, 1 000 articles); the service under
``gunicorn -w 2`` with rate limiting off and the cache on, once with the
host-local store (``sqlitefile``) and once with Redis.

- **Readers**: wrk (``-t1 -c4``, keep-alive) replays a fixed sequence drawn
  from a Zipf distribution (s = 1) over about 2 000 URLs: the front page and
  its later pages, the tags page, tag pages, profiles with their authors'
  lists, and articles with their comments (``limit=10`` as the front ends ask).
  A Lua hook counts ``X-Cache: hit`` answers.
- **Writer**: one keep-alive client sending one kind of write at W a second:
  favorites and unfavorites of random articles, comments on random articles,
  logins, or follows and unfollows of random users.

Each (store, kind, rate) run starts from a fresh server and a cold cache,
warms it by replaying the stretch of the sequence it then measures (for as
long), so what the run counts is what the writes cost, not first-time misses.
Reported per run: the share of reads answered from the cache, reads/s, and both
as a fraction of the read-only run of the same store.

Needs wrk, redis-server and PostgreSQL's server binaries (Debian packages).
Usage: python bench/mixed.py [--seconds 10] [--rates 0,1,5,20] [--kinds favorite,comment,login,follow]
       [--stores sqlitefile,redis] [--checkout PATH]   (PATH: another checkout to serve, e.g. a "before" worktree)
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.reads import gunicorn, login, seed  # noqa: E402
from bench.throughput import redis_server, run_wrk, wait_for  # noqa: E402
from tests import pg  # noqa: E402

#: wrk: replay PATHS in order (one connection each takes the next), count the hits.
WRK_LUA = """
local threads = {{}}
setup = function(thread) table.insert(threads, thread) end
init = function(args)
  paths = dofile("{paths}")
  n, hits, total = tonumber(args[1]), 0, 0
end
request = function()
  n = n + 1
  if n > #paths then n = 1 end
  return wrk.format("GET", paths[n])
end
response = function(status, headers, body)
  total = total + 1
  if headers["X-Cache"] == "hit" then hits = hits + 1 end
end
done = function(summary, latency, requests)
  local h, t = 0, 0
  for _, thread in ipairs(threads) do h = h + thread:get("hits"); t = t + thread:get("total") end
  io.write(string.format("HITS %d TOTAL %d\\n", h, t))
end
"""


def universe(url: str) -> tuple[list[str], list[str], list[str]]:
    """The URLs a front end reads, most popular first (shuffled within kinds); slugs; usernames."""
    with psycopg.connect(url.replace("+psycopg", "")) as connection:
        slugs = [r[0] for r in connection.execute("SELECT slug FROM articles ORDER BY created_at DESC, id DESC")]
        users = [r[0] for r in connection.execute("SELECT username FROM users ORDER BY id")]
        tags = [r[0] for r in connection.execute("SELECT name FROM tags ORDER BY name")]
    rng = random.Random(7)
    lists = ["/api/articles?limit=10&offset=0", "/api/tags"]
    lists += [f"/api/articles?limit=10&offset={10 * n}" for n in range(1, 20)]
    lists += [f"/api/articles?tag={tag}&limit=10&offset={10 * n}" for tag in tags for n in range(3)]
    people = [p for user in users for p in (f"/api/profiles/{user}", f"/api/articles?author={user}&limit=5&offset=0")]
    pages = [p for slug in slugs for p in (f"/api/articles/{slug}", f"/api/articles/{slug}/comments")]
    rng.shuffle(people)
    # Newer articles are read more: keep their order, with some noise.
    pages = [p for _, p in sorted(enumerate(pages), key=lambda item: item[0] + rng.uniform(0, 200))]
    ranked = lists[:2] + [p for trio in zip(lists[2:], people, pages, strict=False) for p in trio]
    ranked += [p for p in pages + people + lists[2:] if p not in set(ranked)]
    return list(dict.fromkeys(ranked)), slugs, users


def zipf_sequence(urls: list[str], length: int, rng: random.Random) -> list[str]:
    weights = [1 / rank for rank in range(1, len(urls) + 1)]
    return rng.choices(urls, weights=weights, k=length)


class Writer(threading.Thread):
    """One client writing ``kind`` at ``rate`` a second until stopped."""

    def __init__(self, base: str, kind: str, rate: float, tokens: list[str], creds: list[str], slugs: list[str],
                 users: list[str]) -> None:  # fmt: skip
        super().__init__(daemon=True)
        host, port = base.removeprefix("http://").split(":")
        self.connection = http.client.HTTPConnection(host, int(port), timeout=30)
        self.kind, self.rate, self.tokens, self.creds = kind, rate, tokens, creds
        self.slugs, self.users = slugs, users
        self.rng = random.Random(11)
        self.stop = threading.Event()
        self.sent = self.failed = 0

    def call(self, method: str, path: str, body: object = None, token: str | None = None) -> int:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Token {token}"
        self.connection.request(method, path, json.dumps(body) if body is not None else None, headers)
        response = self.connection.getresponse()
        response.read()
        return response.status

    def one(self) -> int:
        token = self.rng.choice(self.tokens)
        slug = self.rng.choice(self.slugs)
        if self.kind == "favorite":
            return self.call(self.rng.choice(["POST", "DELETE"]), f"/api/articles/{slug}/favorite", token=token)
        if self.kind == "comment":
            return self.call("POST", f"/api/articles/{slug}/comments", {"comment": {"body": "Nice"}}, token)
        if self.kind == "login":
            body = {"user": {"email": self.rng.choice(self.creds), "password": "seeded-password"}}
            return self.call("POST", "/api/users/login", body)
        if self.kind == "follow":
            user = self.rng.choice(self.users)
            return self.call(self.rng.choice(["POST", "DELETE"]), f"/api/profiles/{user}/follow", token=token)
        raise ValueError(self.kind)

    def run(self) -> None:
        if self.rate <= 0:
            return
        start = time.monotonic()
        while not self.stop.is_set():
            status = self.one()
            self.sent += 1
            self.failed += status >= 400 and status != 403  # following oneself is refused: still a write attempt
            self.stop.wait(max(0.0, start + self.sent / self.rate - time.monotonic()))


def read_run(base: str, lua: Path, seconds: int, cpu: Callable[[], float], start: int) -> tuple[float, float]:
    """(reads/s, share of hits) of one wrk run replaying the sequence from ``start``."""
    out, rps, _ = run_wrk(["wrk", "-t1", "-c4", f"-d{seconds}s", "-s", str(lua), base, "--", str(start)], cpu)
    hits, total = map(int, re.search(r"HITS (\d+) TOTAL (\d+)", out).groups())  # type: ignore[union-attr]
    return rps, hits / max(total, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rates", default="0,1,5,20")
    parser.add_argument("--kinds", default="favorite,comment,login,follow")
    parser.add_argument("--stores", default="sqlitefile,redis")
    parser.add_argument("--checkout", type=Path, default=ROOT)
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    binaries = pg.bindir()
    if binaries is None:
        sys.exit("PostgreSQL's server binaries are needed (apt-get install postgresql-15)")

    rows: list[tuple[str, str, float, float, float, float, float]] = []
    with ExitStack() as stack:
        cluster = stack.enter_context(pg.private_cluster(binaries))
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        base_env = {
            **os.environ,
            "CONDUIT_ENV": "production",
            "CONDUIT_SECRET_KEY": secrets.token_urlsafe(48),
            "CONDUIT_DATABASE_URL": cluster.url,
            "CONDUIT_RATELIMIT_ENABLED": "false",
            "CONDUIT_LOG_LEVEL": "WARNING",
        }
        seed(cluster.url, 50, 1000, {**base_env, "CONDUIT_INSTANCE_PATH": str(tmp / "seed")})
        urls, slugs, users = universe(cluster.url)
        rng = random.Random(3)
        paths = tmp / "paths.lua"
        sequence = zipf_sequence(urls, 400_000, rng)
        paths.write_text("return {" + ",".join(json.dumps(p) for p in sequence) + "}\n")
        lua = tmp / "mixed.lua"
        lua.write_text(WRK_LUA.replace("{paths}", str(paths)).replace("{{}}", "{}"))
        with psycopg.connect(cluster.url.replace("+psycopg", "")) as connection:
            creds = [r[0] for r in connection.execute("SELECT email FROM users ORDER BY id LIMIT 10")]
        redis_url = stack.enter_context(redis_server())[0] if "redis" in args.stores else ""
        print(f"{len(urls)} URLs, Zipf s=1; {args.seconds} s a run; wrk -t1 -c4; gunicorn -w 2; {args.checkout}")
        for store in args.stores.split(","):
            baseline: tuple[float, float] | None = None
            for kind in args.kinds.split(","):
                for rate in rates:
                    if rate == 0 and baseline is not None:
                        continue
                    env = {**base_env, "CONDUIT_INSTANCE_PATH": str(tmp / f"{store}-{kind}-{rate}")}
                    env["CONDUIT_CACHE_URL"] = redis_url if store == "redis" else store
                    env["CONDUIT_CACHE_KEY_PREFIX"] = f"run-{secrets.token_hex(4)}"  # a cold cache every run
                    with gunicorn("service", "wsgi:application", env, args.checkout) as server:
                        wait_for(server.base + "/healthz")
                        tokens = [login(server.base, email) for email in creds[:5]]
                        # Warm: statements prepared, the cache filled by the very stretch of the sequence
                        # measured next, so the run counts what writes cost, not first-time misses.
                        read_run(server.base, lua, args.seconds, server.cpu_seconds, 100_000)
                        writer = Writer(server.base, kind, rate, tokens, creds, slugs, users)
                        writer.start()
                        rps, share = read_run(server.base, lua, args.seconds, server.cpu_seconds, 100_000)
                        writer.stop.set()
                        writer.join()
                    if rate == 0:
                        baseline = (rps, share)
                    assert baseline is not None
                    label = "none (read-only)" if rate == 0 else kind
                    rows.append((store, label, rate, share, share / baseline[1], rps, rps / baseline[0]))
                    sent = f"{writer.sent / args.seconds:.1f}/s sent, {writer.failed} failed" if rate else ""
                    print(f"{store} {label} {rate:g}/s: hits {share:.0%}, {rps:.0f} reads/s {sent}", file=sys.stderr)

    print()
    print("| store | writes | writes/s | share of reads from the cache | of read-only | reads/s | of read-only |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for store, label, rate, share, share_ratio, rps, rps_ratio in rows:
        print(f"| {store} | {label} | {rate:g} | {share:.0%} | {share_ratio:.2f} | {rps:.0f} | {rps_ratio:.2f} |")


if __name__ == "__main__":
    main()
