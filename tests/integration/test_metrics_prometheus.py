"""Prometheus scrapes gunicorn's three workers and counts exactly what was sent, through a worker's death.

Debian's ``prometheus`` server scrapes the installed wheel under ``gunicorn -c
python:service.gunicorn_conf`` (3 sync workers, production settings, the
metrics folder gunicorn_conf chooses) every second, with the bearer token the
service asks for; the test asks Prometheus's HTTP API, as a dashboard would.
Between two bursts of traffic one worker is killed with SIGKILL and replaced
(and more are recycled by ``max_requests``): the totals Prometheus reports
must still be exactly the requests sent, by route, method and status class.
Then 10 000 distinct URLs must not add a single series.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.servers import ROOT, Installed, free_port, require_binary, stop

pytestmark = pytest.mark.slow

TOKEN = "prometheus-scrape-token-0123456789"
SECRET = "metrics-test-secret-0123456789-abcdefghijklmnop"
#: Each client request, and the series it is counted in: (route template, method, status class).
TRAFFIC: tuple[tuple[str, str, Any, tuple[str, str, str]], ...] = (
    ("GET", "/api/tags", None, ("/api/tags", "GET", "2xx")),
    ("GET", "/api/articles?limit=5", None, ("/api/articles", "GET", "2xx")),
    ("GET", "/api/articles/no-such-article", None, ("/api/articles/{slug}", "GET", "4xx")),
    ("GET", "/api/no/such/route", None, ("(unmatched)", "GET", "4xx")),
    ("DELETE", "/api/articles/no-such-article", None, ("/api/articles/{slug}", "DELETE", "4xx")),
)
LOGIN = ("POST", "/api/users/login", {"user": {"email": "nobody@example.org", "password": "wrong password"}})


@dataclass
class Stack:
    app: str
    prometheus: str
    master: subprocess.Popen[bytes]
    log: Path
    metrics_dir: Path

    def workers(self) -> set[int]:
        children = Path(f"/proc/{self.master.pid}/task/{self.master.pid}/children").read_text().split()
        return {int(pid) for pid in children}

    def query(self, promql: str) -> list[dict[str, Any]]:
        url = f"{self.prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=10) as response:
            answer = json.load(response)
        assert answer["status"] == "success", answer
        return answer["data"]["result"]  # type: ignore[no-any-return]

    def scalar(self, promql: str) -> float:
        found = self.query(promql)
        return float(found[0]["value"][1]) if found else 0.0

    def scraped_after(self, moment: float) -> None:
        """Wait until Prometheus has scraped the service after ``moment`` (a time.time())."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            found = self.query('timestamp(up{job="conduit"})')
            if found and float(found[0]["value"][1]) > moment and float(self.query('up{job="conduit"}')[0]["value"][1]):
                return
            time.sleep(0.2)
        raise AssertionError(f"Prometheus did not scrape the service again:\n{self.log.read_text()[-2000:]}")


def _wait(check: Any, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen in {seconds} s")


@pytest.fixture
def stack(installed: Installed, tmp_path: Path) -> Iterator[Stack]:
    prometheus = require_binary("prometheus")
    app_port, prom_port = free_port(), free_port()
    log = tmp_path / "gunicorn.log"
    env = installed.environ(
        CONDUIT_ENV="production",
        CONDUIT_SECRET_KEY=SECRET,
        CONDUIT_INSTANCE_PATH=str(tmp_path / "instance"),
        CONDUIT_BIND=f"127.0.0.1:{app_port}",
        CONDUIT_WORKERS="3",
        CONDUIT_MAX_REQUESTS="1500",  # workers are also recycled during the run
        CONDUIT_MAX_REQUESTS_JITTER="100",
        CONDUIT_RATELIMIT_DEFAULT="100000/minute",
        CONDUIT_RATELIMIT_LOGIN="100000/minute",
        CONDUIT_METRICS_ALLOW="127.0.0.1",
        CONDUIT_METRICS_TOKEN=TOKEN,
    )
    argv = [str(installed.bin / "gunicorn"), "-c", "python:service.gunicorn_conf", "wsgi:application"]
    metrics_dir = tmp_path / "instance" / "metrics"  # gunicorn_conf's choice when none is set
    metrics_dir.mkdir(parents=True)
    (metrics_dir / "counter_1.db").write_bytes(b"counts of a previous run")  # gunicorn must empty the folder
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n  - job_name: conduit\n"
        f"    authorization:\n      credentials: {TOKEN}\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{app_port}']\n"
    )
    prom_argv = [
        prometheus,
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{prom_port}",
    ]
    with log.open("wb") as sink, (tmp_path / "prometheus.log").open("wb") as prom_sink:
        master = subprocess.Popen(argv, cwd=installed.elsewhere, env=env, stdout=sink, stderr=sink)
        scraper = subprocess.Popen(prom_argv, cwd=tmp_path, stdout=prom_sink, stderr=prom_sink)
    app, scraping = f"http://127.0.0.1:{app_port}", f"http://127.0.0.1:{prom_port}"
    stack = Stack(app, scraping, master, tmp_path / "prometheus.log", metrics_dir)
    try:
        _wait(lambda: urllib.request.urlopen(f"{stack.app}/readyz", timeout=2).status == 200, "gunicorn ready")
        _wait(lambda: len(stack.workers()) == 3, "three workers")
        _wait(lambda: urllib.request.urlopen(f"{stack.prometheus}/-/ready", timeout=2).status == 200, "prometheus")
        stack.scraped_after(time.time())
        yield stack
    finally:
        for process in (scraper, master):
            stop(process)
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]


def _send(base: str, method: str, path: str, body: Any = None) -> int:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as error:
        error.read()
        error.close()
        return int(error.code)


def _burst(base: str, clients: int, rounds: int, sent: Counter[tuple[str, str, str]]) -> None:
    """``clients`` threads each send ``rounds`` of TRAFFIC (every 10th round a failed login too), a connection each."""
    lock = threading.Lock()
    failures: list[str] = []

    def client() -> None:
        mine: Counter[tuple[str, str, str]] = Counter()
        for n in range(rounds):
            for method, path, body, series in TRAFFIC:
                status = _send(base, method, path, body)
                if f"{status // 100}xx" != series[2]:
                    failures.append(f"{method} {path}: {status}")
                mine[series] += 1
            if n % 10 == 0:
                assert _send(base, *LOGIN) == 401
                mine[("/api/users/login", "POST", "4xx")] += 1
        with lock:
            sent.update(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures[:5]


def _counted(stack: Stack) -> Counter[tuple[str, str, str]]:
    """What Prometheus counted, by series, besides the fixture's polls of /readyz."""
    requests = 'conduit_http_requests_total{route!="/readyz"}'
    found = stack.query(f"sum by (route, method, status) ({requests})")
    return Counter(
        {
            (row["metric"]["route"], row["metric"]["method"], row["metric"]["status"]): int(float(row["value"][1]))
            for row in found
        }
    )


def _every_dashboard_query_answers(stack: Stack) -> None:
    """Each query of docs/grafana-conduit.json is one Prometheus accepts; those of traffic and the cache find data."""
    dashboard = json.loads((ROOT / "docs" / "grafana-conduit.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"].replace("$job", ".*").replace("$instance", ".*")
            expr = expr.replace("$__rate_interval", "30s").replace("$__range", "5m")
            found = stack.query(expr)  # raises unless Prometheus accepted it
            if panel["title"].startswith(("Requests", "Responses", "Latency", "Cache", "Running builds")):
                assert found, f"{panel['title']}: {expr} found nothing"


def _series(stack: Stack) -> int:
    return int(stack.scalar('count({job="conduit", __name__=~"conduit_.+"})'))


def test_prometheus_counts_exactly_what_was_sent_through_a_worker_kill_and_bounded_series(stack: Stack) -> None:
    sent: Counter[tuple[str, str, str]] = Counter()
    _burst(stack.app, clients=4, rounds=60, sent=sent)
    first = stack.workers()

    victim = sorted(first)[0]
    os.kill(victim, signal.SIGKILL)
    _wait(lambda: len(stack.workers()) == 3 and victim not in stack.workers(), "a replacement worker")
    _burst(stack.app, clients=4, rounds=60, sent=sent)
    finished = time.time()
    stack.scraped_after(finished)
    counted = _counted(stack)
    replaced = first - stack.workers()

    print(  # noqa: T201
        f"\nsent {sum(sent.values())} requests in {len(sent)} series; Prometheus counted {sum(counted.values())};"
        f" workers replaced: {len(replaced)} (killed)"
    )
    assert counted == sent
    assert stack.scalar("sum(conduit_login_failures_total)") == sent[("/api/users/login", "POST", "4xx")]
    _every_dashboard_query_answers(stack)
    assert stack.scalar("count(conduit_build_info)") == 1
    assert victim in replaced
    assert not (stack.metrics_dir / "counter_1.db").exists()  # emptied at start
    assert (stack.metrics_dir / f"counter_{victim}.db").exists()  # the dead worker's counts stay in the totals
    assert not (stack.metrics_dir / f"gauge_livemax_{victim}.db").exists()  # its gauges went with it

    # 10 000 distinct URLs: 404s on matched routes and on no route, each path new.
    series_before = _series(stack)
    urls: Counter[tuple[str, str, str]] = Counter()
    lock = threading.Lock()

    def distinct(offset: int) -> None:
        mine: Counter[tuple[str, str, str]] = Counter()
        for n in range(offset, 10_000, 4):
            if n % 2:
                assert _send(stack.app, "GET", f"/api/articles/missing-{n}") == 404
                mine[("/api/articles/{slug}", "GET", "4xx")] += 1
            else:
                assert _send(stack.app, "GET", f"/api/no/such/route-{n}") == 404
                mine[("(unmatched)", "GET", "4xx")] += 1
        with lock:
            urls.update(mine)

    threads = [threading.Thread(target=distinct, args=(offset,)) for offset in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stack.scraped_after(time.time())
    series_after = _series(stack)

    recycled = len(first - stack.workers()) - 1
    print(  # noqa: T201
        f"series before the 10 000 URLs: {series_before}, after: {series_after};"
        f" counted exactly {sum((sent + urls).values())} with {recycled} more workers recycled by max_requests"
    )
    assert series_after == series_before
    assert _counted(stack) == sent + urls
    assert recycled >= 1
