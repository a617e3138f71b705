"""Reads at 1 000, 100 000 and 1 000 000 articles: does a read cost its page or the table?

For each size, one PostgreSQL database of our schema filled by SQL
(``tests/scale.py``: per 20 articles a user, 25 tags on 2.5 articles each
(each tag on about a tenth of the articles), a favorite per article, five
follows per user), then ``gunicorn -w 2`` with the cache and rate limiting off:

- each read's **unloaded p50**: sequential requests on one keep-alive
  connection (30, or as many as fit in 3 s, at least 3);
- the **PostgreSQL CPU per request** during those requests (the server
  processes' user + system time, from /proc);
- the **EXPLAIN ANALYZE** of the read's statement, as the service sends it,
  at the 1st and the 10th execution of a prepared statement on one connection
  (PostgreSQL plans the first five with the values, then may switch to a
  generic plan): the buffers it touched and its time.

It prints a table per size and the growth of each p50 from the smallest to the
largest size. ``--checkout`` serves (and migrates with) another checkout, e.g.
a worktree of the commit before, for the "before" figures. Needs PostgreSQL's
server binaries (Debian: postgresql-15). About 6 minutes on 2 cores.

Usage: python bench/scale.py [--sizes 1000,100000,1000000] [--checkout PATH]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.reads import gunicorn  # noqa: E402
from bench.throughput import wait_for  # noqa: E402
from tests import pg, scale  # noqa: E402

#: name -> path (``{token}`` reads are signed in as user 42, who follows five authors).
READS = {
    "list": "/api/articles",
    "tag": "/api/articles?tag=t7",
    "author": "/api/articles?author=u42",
    "favorited": "/api/articles?favorited=u42",
    "tag + author": "/api/articles?tag=t7&author=u42",
    "offset=10000": "/api/articles?offset=10000",
    "feed (token)": "/api/articles/feed",
    "article": "/api/articles/s777",
    "comments": "/api/articles/s777/comments",
    "profile": "/api/profiles/u42",
    "tags": "/api/tags",
}


def postgres_cpu_seconds(port: int) -> float:
    """User + system CPU of every process of the PostgreSQL server listening on ``port``."""
    total = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if (proc / "comm").read_text().strip() != "postgres":
                continue
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError):
            continue
    return total / os.sysconf("SC_CLK_TCK")


def sample(base: str, path: str, token: str | None) -> tuple[float, int]:
    """p50 in ms of sequential requests to ``path`` and how many were made."""
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=120)
    headers = {"Authorization": f"Token {token}"} if token else {}
    took: list[float] = []
    deadline = time.monotonic() + 3
    while len(took) < 3 or (len(took) < 30 and time.monotonic() < deadline):
        started = time.perf_counter()
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"{path}: {response.status}")
        took.append((time.perf_counter() - started) * 1000)
    connection.close()
    return statistics.median(took), len(took)


def explain_10(url: str, checkout: Path, path: str, token_user: int | None) -> tuple[str, str]:
    """Buffers and ms of the read's statement at its 1st and 10th execution (prepared, on one connection)."""
    code = f"""
import importlib.util, json, sys
sys.path.insert(0, {str(checkout)!r})
from sqlalchemy import create_engine
from werkzeug.test import EnvironBuilder
from service import queries
# This checkout's helpers, whichever checkout is measured (an older one has no tests/scale.py).
spec = importlib.util.spec_from_file_location("scale_helpers", {str(ROOT / "tests" / "scale.py")!r})
helpers = importlib.util.module_from_spec(spec); spec.loader.exec_module(helpers)
explain_executions, last_statement = helpers.explain_executions, helpers.last_statement
engine = create_engine({url!r})
path, viewer = {path!r}, {token_user!r}
args = EnvironBuilder(path=path).get_request().args
slug = path.split("/")[3] if path.count("/") >= 3 else ""
def read(c):
    if path.startswith("/api/articles/feed"):
        return queries.feed_page(c, viewer)
    if path.startswith("/api/articles/") and path.endswith("/comments"):
        return queries.comments_by_slug(c, slug, None)
    if path.startswith("/api/articles/"):
        return queries.article_by_slug(c, slug, None)
    if path.startswith("/api/profiles/"):
        return queries.profile_row(c, path.rsplit("/", 1)[1], None)
    if path == "/api/tags":
        return queries.tag_names(c)
    filters = {{k: args[k] for k in ("tag", "author", "favorited") if k in args}}
    return queries.articles_page(c, None, offset=int(args.get("offset", 0)), **filters)
with engine.connect() as c:
    statement, parameters, _ = last_statement(c, read)
    print(json.dumps(explain_executions(c, statement, parameters, 10)))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    runs = json.loads(out)
    first, tenth = runs[0], runs[-1]
    return f"{first[0]} buf, {first[1]:.1f} ms", f"{tenth[0]} buf, {tenth[1]:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,100000,1000000")
    parser.add_argument("--checkout", type=Path, default=ROOT)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    binaries = pg.bindir()
    if binaries is None:
        sys.exit("PostgreSQL's server binaries are needed (apt-get install postgresql-15)")
    p50s: dict[tuple[str, int], float] = {}
    with ExitStack() as stack:
        cluster = stack.enter_context(pg.private_cluster(binaries))
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        admin = create_engine(cluster.url, isolation_level="AUTOCOMMIT")
        for size in sizes:
            started = time.monotonic()
            name = f"scale_{size}"
            with admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
            url = cluster.url.rsplit("/", 1)[0] + f"/{name}"
            env = {
                **os.environ,
                "CONDUIT_ENV": "production",
                "CONDUIT_SECRET_KEY": "scale-benchmark-secret-0123456789-abcdefghijklmnop",
                "CONDUIT_DATABASE_URL": url,
                "CONDUIT_CACHE_URL": "null",
                "CONDUIT_RATELIMIT_ENABLED": "false",
                "CONDUIT_LOG_LEVEL": "WARNING",
                "CONDUIT_INSTANCE_PATH": str(tmp / name),
                "PYTHONPATH": str(args.checkout),
            }
            subprocess.run(
                [sys.executable, "-m", "alembic", "upgrade", "head"], cwd=args.checkout, env=env, check=True,
                capture_output=True,
            )  # fmt: skip
            engine = create_engine(url)
            with engine.begin() as connection:
                scale.fill(connection, size)
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.exec_driver_sql("VACUUM ANALYZE")  # as autovacuum would have by then
            engine.dispose()
            filled = time.monotonic() - started
            token = _token(env, args.checkout)
            with gunicorn("service", "wsgi:application", env, args.checkout) as server:
                wait_for(server.base + "/healthz")
                rows = []
                for read, path in READS.items():
                    signed_in = read.endswith("(token)")
                    sample(server.base, path, token if signed_in else None)  # warm: a worker's first requests
                    cpu_before = postgres_cpu_seconds(cluster.port)
                    p50, count = sample(server.base, path, token if signed_in else None)
                    cpu_ms = (postgres_cpu_seconds(cluster.port) - cpu_before) * 1000 / count
                    first, tenth = explain_10(url, args.checkout, path, 42 if signed_in else None)
                    p50s[(read, size)] = p50
                    rows.append(f"| {read} | {p50:.1f} | {cpu_ms:.2f} | {first} | {tenth} |")
            print(f"\n{size:,} articles (filled in {filled:.0f} s)\n")
            print("| read | p50 ms | PostgreSQL CPU ms/req | EXPLAIN ANALYZE, 1st | 10th |")
            print("| --- | --- | --- | --- | --- |")
            print("\n".join(rows), flush=True)
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    small, large = sizes[0], sizes[-1]
    print(f"\ngrowth of the p50 from {small:,} to {large:,} articles\n")
    print(f"| read | {small:,} | {large:,} | growth |")
    print("| --- | --- | --- | --- |")
    for read in READS:
        a, b = p50s[(read, small)], p50s[(read, large)]
        print(f"| {read} | {a:.1f} | {b:.1f} | {b / a:.2f}x |")


def _token(env: dict[str, str], checkout: Path) -> str:
    """A token for user 42, signed with the server's secret."""
    code = (
        f"import sys; sys.path.insert(0, {str(checkout)!r});"
        "from service import auth; from sqlalchemy import create_engine, text;"
        f"e = create_engine({env['CONDUIT_DATABASE_URL']!r});"
        "stamp = e.connect().execute(text('SELECT token_stamp FROM users WHERE id = 42')).scalar();"
        f"print(auth.issue_token(42, stamp, {env['CONDUIT_SECRET_KEY']!r}, 3600))"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


if __name__ == "__main__":
    main()
