"""Where a request's CPU goes under gunicorn, per layer: py-spy on the workers while wrk drives them.

In-process (``hit_cost.py``) the service adds about 25 µs to a cache hit; under
gunicorn a hit costs several times what hello-world costs. This measures the
served path, for four workloads on one seeded SQLite database (gunicorn -w 2
with the production settings of ``service.gunicorn_conf``, the request log on):

- ``hello``: ``hello_app.py`` under the same gunicorn: gunicorn's own share;
- ``hit``: anonymous ``GET /api/articles`` from the host-local cache;
- ``signed-in hit``: the same page with a token (the shared answer personalised);
- ``miss``: the same page with the cache off (``CONDUIT_CACHE_URL=null``).

Each workload is driven twice with wrk (``-t1 -c8``, ``Connection: close`` as
a browser behind a proxy often is, unless ``--keep-alive``): once unprofiled,
for the CPU per request (the workers' scheduler clock), and once with
``py-spy record --format raw`` attached to every worker, for the shares. Each
sample is given to a layer twice: by the package of its innermost frame (what
code ran), and by the innermost frame of the service's own modules (which of
our layers asked for it, the libraries it calls included). Shares times the
unprofiled CPU per request give µs per request.

Usage: python bench/profile_layers.py [--seconds 8] [--rate 400] [--keep-alive] [--top 14]
(needs ``wrk`` and ``py-spy``: ``pip install py-spy``; as root, or with ptrace allowed)
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from throughput import Server, free_port, run_wrk, seeded, settle, wait_for

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
URL = "/api/articles"
#: Where a frame's file lies -> its package, for the "what code ran" table (first match wins).
PACKAGES = [
    ("/service/middleware/", lambda m: "service.middleware." + m.split("/service/middleware/")[1].removesuffix(".py")),
    ("/service/", lambda m: "service." + m.split("/service/")[1].removesuffix(".py").replace("/", ".")),
    ("/schemas/", lambda m: "schemas." + m.split("/schemas/")[1].removesuffix(".py")),
    ("/bench/hello_app", lambda m: "hello_app"),
    ("/site-packages/", lambda m: m.split("/site-packages/")[1].split("/")[0].removesuffix(".py")),
    (
        "/lib/python3",
        lambda m: "stdlib." + m.split("/lib/python3")[1].split("/", 1)[1].split("/")[0].removesuffix(".py"),
    ),
]
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^:()]+)(?::\d+)?\)$")


def package_of(frame: str) -> str:
    match = _FRAME.match(frame)
    path = match["file"] if match else frame
    for marker, name in PACKAGES:
        if marker in path:
            return name(path)
    return "(native)" if not match else path


def ours(package: str) -> bool:
    return package.startswith(("service.", "schemas.")) or package == "hello_app"


def attribute(raw: Path) -> tuple[collections.Counter[str], collections.Counter[str]]:
    """Samples by innermost package, and by innermost frame of our own (``(gunicorn)`` above our code)."""
    by_code: collections.Counter[str] = collections.Counter()
    by_layer: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        packages = [package_of(frame) for frame in stack.split(";")]
        by_code[packages[-1]] += int(count)
        own = [p for p in packages if ours(p)]
        by_layer[own[-1] if own else f"(outside our code: {_server_part(packages)})"] += int(count)
    return by_code, by_layer


def _server_part(packages: list[str]) -> str:
    """What runs outside the app: gunicorn's HTTP and worker loop, mostly."""
    named = [p for p in packages if p not in ("(native)",) and not p.startswith("stdlib.threading")]
    return next((p for p in reversed(named) if p.startswith("gunicorn")), named[-1] if named else "native")


@contextmanager
def served(env: dict[str, str], app: str, workers: int, chdir: Path = ROOT) -> Iterator[Server]:
    port = free_port()
    argv = [sys.executable, "-m", "gunicorn", "-c", "python:service.gunicorn_conf", "--chdir", str(chdir), app]
    env = {**env, "CONDUIT_BIND": f"127.0.0.1:{port}", "CONDUIT_WORKERS": str(workers), "CONDUIT_MAX_REQUESTS": "0"}
    with open(os.devnull, "wb") as sink:
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=sink, stderr=sink)
    try:
        server = Server(f"http://127.0.0.1:{port}", process.pid, ())
        wait_for(server.base + ("/" if app.startswith("hello") else "/healthz"))
        settle([server])
        yield server
    finally:
        process.terminate()
        process.wait(timeout=30)


def workers_of(server: Server) -> list[str]:
    return Path(f"/proc/{server.master}/task/{server.master}/children").read_text().split()


def token_for(base: str) -> str:
    user = {"user": {"username": "profiler", "email": "profiler@example.org", "password": "password123"}}
    request = urllib.request.Request(
        base + "/api/users", json.dumps(user).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request) as response:
        return str(json.load(response)["user"]["token"])


def measure(server: Server, headers: list[str], seconds: int, rate: int, out: Path) -> tuple[float, float, Path]:
    """wrk unprofiled (req/s, CPU µs per request), then again under py-spy: the merged raw samples' file."""
    wrk = [
        "wrk",
        "-t1",
        "-c8",
        f"-d{seconds}s",
        *[part for header in headers for part in ("-H", header)],
        server.base + URL,
    ]
    for _ in range(3):  # warm: stored, and every worker's own memos filled
        subprocess.run(["wrk", "-t1", "-c2", "-d1s", *wrk[4:]], capture_output=True, check=True)
    _, rps, cpu_ms = run_wrk(wrk, server.cpu_seconds)
    spies = []
    for pid in workers_of(server):
        target = out.with_name(f"{out.stem}-{pid}.txt")
        argv = [
            "py-spy",
            "record",
            "--pid",
            pid,
            "--rate",
            str(rate),
            "--duration",
            str(seconds + 2),
            "--full-filenames",
        ]
        spies.append(
            (
                subprocess.Popen(
                    [*argv, "--format", "raw", "--output", str(target)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                ),
                target,
            )
        )
    time.sleep(1)
    subprocess.run(wrk, capture_output=True, check=True)
    with out.open("w") as merged:
        for spy, target in spies:
            spy.wait(timeout=seconds + 30)
            merged.write(target.read_text())
    return rps, cpu_ms * 1000, out


def table(title: str, samples: collections.Counter[str], cpu_us: float, top: int) -> None:
    total = sum(samples.values()) or 1
    print(f"  {title}")
    shown = 0.0
    for name, count in samples.most_common(top):
        share = count / total
        shown += share
        print(f"    {name:<58} {100 * share:5.1f} %  {share * cpu_us:7.1f} µs")
    print(f"    {'(the rest)':<58} {100 * (1 - shown):5.1f} %  {(1 - shown) * cpu_us:7.1f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rate", type=int, default=400, help="py-spy samples per second per worker")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep-alive", action="store_true", help="reuse connections (default: Connection: close)")
    parser.add_argument("--top", type=int, default=14)
    args = parser.parse_args()
    if not shutil.which("py-spy") or not shutil.which("wrk"):
        sys.exit("needs py-spy (pip install py-spy) and wrk on PATH")
    close = [] if args.keep_alive else ["Connection: close"]
    results = {}
    with tempfile.TemporaryDirectory(prefix="conduit-profile-") as folder:
        work = Path(folder)
        env = seeded(work)
        workloads = [
            ("hello", env, "hello_app:application", BENCH, False),
            ("hit", env, "wsgi:application", ROOT, False),
            ("signed-in hit", env, "wsgi:application", ROOT, True),
            ("miss", {**env, "CONDUIT_CACHE_URL": "null"}, "wsgi:application", ROOT, False),
        ]
        for name, settings, app, chdir, signed_in in workloads:
            with served(settings, app, args.workers, chdir) as server:
                headers = close + ([f"Authorization: Token {token_for(server.base)}"] if signed_in else [])
                rps, cpu_us, raw = measure(
                    server, headers, args.seconds, args.rate, work / f"{name.replace(' ', '-')}.txt"
                )
                results[name] = (rps, cpu_us, *attribute(raw))
    connection = "keep-alive" if args.keep_alive else "Connection: close"
    print(f"gunicorn -w {args.workers} (service.gunicorn_conf), wrk -t1 -c8 ({connection}), GET {URL}, SQLite")
    for name, (rps, cpu_us, by_code, by_layer) in results.items():
        print(f"\n{name}: {rps:.0f} req/s, {cpu_us:.0f} µs of worker CPU per request")
        table("by the code that ran (innermost frame's package)", by_code, cpu_us, args.top)
        table("by our layer that asked for it (innermost frame of ours)", by_layer, cpu_us, args.top)


if __name__ == "__main__":
    main()
