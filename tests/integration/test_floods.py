"""Floods of distinct URLs: a worker's memory levels off under its memos' bounds."""

from __future__ import annotations

import http.client
import re
import secrets
from pathlib import Path

import pytest

from tests.integration.servers import gunicorn

pytestmark = pytest.mark.slow


def rss_kb(pid: str) -> int:
    return int(re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text()).group(1))  # type: ignore[union-attr]


def flood(base: str, count: int, url: object) -> None:
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    for n in range(count):
        connection.request("GET", url(n))  # type: ignore[operator]
        connection.getresponse().read()
    connection.close()


@pytest.mark.parametrize(
    "kind",
    [
        "query",  # distinct 3.8 KB query strings: the cache's per-process tally of misses
        "path",  # distinct 3.9 KB paths a route matches: the router's memo of recent matches
    ],
)
def test_a_flood_of_distinct_long_urls_levels_off(tmp_path: Path, kind: str) -> None:
    run = secrets.token_hex(4)
    filler = "x" * 3800

    def url(n: int) -> str:
        if kind == "query":
            return f"/api/articles?utm={run}{n}{filler}"
        return f"/api/articles/{run}{n}{filler[:3850]}"

    with gunicorn(tmp_path, workers=1, ratelimit_enabled="false", log_level="WARNING") as server:
        flood(server.base, 200, url)
        (pid,) = _workers(server.log)
        flood(server.base, 6000, lambda n: url(n + 10_000))
        settled = rss_kb(pid)
        flood(server.base, 12000, lambda n: url(n + 100_000))
        after = rss_kb(pid)

    assert after - settled < 4 * 1024, f"grew {after - settled} KB over the last 12 000 requests"


def _workers(log: Path) -> set[str]:
    found = set(re.findall(r"Booting worker with pid: (\d+)", log.read_text()))
    assert found, log.read_text()
    return found
