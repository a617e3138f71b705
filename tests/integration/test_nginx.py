"""Production runs behind a buffering reverse proxy: nginx (Debian's) in front of gunicorn, 2 sync workers.

A sync worker serves one connection at a time from its first byte, so 20
clients sending their headers a byte at a time hold every worker and stall
everyone else. nginx reads whole requests (and buffers whole responses) itself,
so gunicorn only ever sees complete requests. The configuration here is the
one docs/deploy.md gives, with loopback ports and a private temp folder.
"""

from __future__ import annotations

import json
import socket
import statistics
import threading
import time
import urllib.request
from collections.abc import Iterator

import pytest

from tests.integration.servers import NGINX_SITE, Gunicorn, gunicorn, nginx_server

pytestmark = pytest.mark.slow

SLOW_CLIENTS = 20
#: How long the slow clients keep trickling their headers.
SLOW_SECONDS = 6.0


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gunicorn]:
    tmp = tmp_path_factory.mktemp("behind-nginx")
    metrics = {"metrics_allow": "127.0.0.1", "metrics_dir": str(tmp / "metrics")}
    with gunicorn(tmp, workers=2, trusted_proxy_hops="1", ratelimit_enabled="false", **metrics) as running:
        yield running


@pytest.fixture(scope="module")
def nginx(service: Gunicorn, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """nginx on a free loopback port in front of ``service``; yields its base URL."""
    upstream = service.base.rsplit(":", 1)[1]
    site = NGINX_SITE.read_text().replace("127.0.0.1:8000", f"127.0.0.1:{upstream}")
    with nginx_server(tmp_path_factory.mktemp("nginx"), site) as base:
        yield base


def _slow_client(base: str, stop_at: float) -> None:
    """Send a request's headers a byte at a time until ``stop_at``, then finish it."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        sock.sendall(b"GET /api/tags HTTP/1.1\r\nHost: slow\r\nX-Padding: ")
        while time.monotonic() < stop_at:
            sock.sendall(b"a")
            time.sleep(0.2)
        sock.sendall(b"\r\nConnection: close\r\n\r\n")
        while sock.recv(65536):
            pass


def _latencies_under_attack(base: str) -> list[float]:
    """Seconds per normal request while ``SLOW_CLIENTS`` trickle their headers.

    Open loop: a normal request starts every 0.2 s whatever happened to the
    previous ones, as real visitors would, so a stall shows in every request it hits.
    """
    stop_at = time.monotonic() + SLOW_SECONDS
    slow = [threading.Thread(target=_slow_client, args=(base, stop_at)) for _ in range(SLOW_CLIENTS)]
    for thread in slow:
        thread.start()
    time.sleep(0.5)  # let every slow client connect first
    latencies: list[float] = []

    def visit() -> None:
        started = time.monotonic()
        with urllib.request.urlopen(f"{base}/api/tags", timeout=60) as response:
            assert response.status == 200
        latencies.append(time.monotonic() - started)

    visitors = []
    while time.monotonic() < stop_at - 0.5:
        visitors.append(threading.Thread(target=visit))
        visitors[-1].start()
        time.sleep(0.2)
    for thread in [*visitors, *slow]:
        thread.join(timeout=60)
    assert len(latencies) == len(visitors)
    return latencies


def _summary(latencies: list[float]) -> str:
    return f"p50 {_p(latencies, 50) * 1000:.0f} ms, p99 {_p(latencies, 99) * 1000:.0f} ms ({len(latencies)} requests)"


def _p(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def test_slow_clients_stall_bare_gunicorn_but_not_gunicorn_behind_nginx(service: Gunicorn, nginx: str) -> None:
    bare = _latencies_under_attack(service.base)
    proxied = _latencies_under_attack(nginx)

    report = (
        f"{SLOW_CLIENTS} slow clients, 2 sync workers: bare gunicorn {_summary(bare)}; behind nginx {_summary(proxied)}"
    )
    print(report)  # noqa: T201 - the figures the deployment guide quotes
    assert _p(bare, 50) > 1.0, report  # the attack is real: without a proxy, everyone waits
    assert _p(proxied, 99) < 0.5, report


def _raw(base: str, request: bytes) -> tuple[int, str, bytes]:
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while part := sock.recv(65536):
            received += part
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    content_type = next(
        (line.split(":", 1)[1].strip() for line in lines if line.lower().startswith("content-type:")), ""
    )
    return int(lines[0].split()[1]), content_type, body


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /api/articles?tag=" + b"x" * 100_000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414),
        (b"GET /api/tags HTTP/1.1\r\nHost: a\r\nX-Big: " + b"x" * 20_000 + b"\r\n\r\n", 400),
        (b"NOT A REQUEST LINE\r\n\r\n", 400),
        (b"POST /api/users HTTP/1.1\r\nHost: a\r\nContent-Length: 2000000\r\n\r\n", 413),
    ],
)
def test_requests_gunicorn_would_refuse_with_html_get_a_json_error_from_nginx(
    nginx: str, request_bytes: bytes, status: int
) -> None:
    answered, content_type, body = _raw(nginx, request_bytes)

    assert answered == status and content_type == "application/json"
    assert json.loads(body)["errors"]


def test_metrics_are_read_from_the_host_itself_never_through_nginx(service: Gunicorn, nginx: str) -> None:
    through_nginx = _raw(nginx, b"GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    direct = _raw(service.base, b"GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")

    assert through_nginx == (404, "application/json", b'{"errors":{"resource":["not found"]}}')
    assert direct[0] == 200 and b"conduit_build_info" in direct[2]
