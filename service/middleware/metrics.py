"""Count every request, and answer ``/metrics`` to whoever the operator allows.

Stacked only when metrics are on (``Settings.metrics_enabled``), just inside
ProxyFix, so the address it checks is the client's as the trusted proxies tell
it. Each request is counted when the application has started its response
(every layer here answers before returning its body), by the route the
router matched for it (``router.ROUTE_KEY``): its template, ``(unmatched)``
for a URL no route answers, ``(other)`` for what the router never saw (the
docs pages, CORS preflights). Scrapes and a new worker's warm-up reads are
not counted.

Who may scrape: a request from an address outside ``CONDUIT_METRICS_ALLOW``
(when set) is passed on as if ``/metrics`` did not exist (the API's 404);
one without the bearer token ``CONDUIT_METRICS_TOKEN`` (when set) gets 401.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Iterable, Sequence
from ipaddress import ip_address, ip_network
from typing import Any

from werkzeug.wrappers import Response
from werkzeug.wsgi import ClosingIterator

from service.config import WARMUP_KEY
from service.errors import ApiError
from service.metrics import Metrics
from service.router import ROUTE_KEY

#: Where Prometheus reads the metrics (below the mount point, if any: ``/conduit/metrics``).
METRICS_PATH = "/metrics"


class MetricsMiddleware:
    """Count each request by route template, method and status class; serve ``/metrics`` to those allowed.

    :param allow: addresses and networks that may scrape; empty for any address.
    :param token: the bearer token a scrape must send; empty for none.
    """

    def __init__(self, app: Any, metrics: Metrics, *, allow: Sequence[str] = (), token: str = "") -> None:
        self.app = app
        self.metrics = metrics
        self.networks = tuple(ip_network(network, strict=False) for network in allow)
        self.token = token.encode()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == METRICS_PATH and self._address_allowed(environ):
            return self._scrape(environ, start_response)
        if WARMUP_KEY in environ:
            return self.app(environ, start_response)  # type: ignore[no-any-return]
        started = time.perf_counter()
        status: list[str] = []

        def start_noting_status(line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status.append(line)
            return start_response(line, headers, exc_info)

        try:
            body = self.app(environ, start_noting_status)
        except BaseException:
            self._count(environ, "500", started)  # the server answers 500 for what escapes the application
            raise
        if status:
            self._count(environ, status[-1], started)
            return body  # type: ignore[no-any-return]
        # An application that starts its response lazily: counted when it is done.
        return ClosingIterator(body, lambda: self._count(environ, status[-1] if status else "500", started))

    def _count(self, environ: dict[str, Any], status: str, started: float) -> None:
        found = environ.get(ROUTE_KEY)
        route = found[0].template if type(found) is tuple else "(other)" if found is None else "(unmatched)"
        self.metrics.request(route, environ.get("REQUEST_METHOD", ""), int(status[:3]), time.perf_counter() - started)

    def _address_allowed(self, environ: dict[str, Any]) -> bool:
        if not self.networks:
            return True
        try:
            address = ip_address(environ.get("REMOTE_ADDR", ""))
        except ValueError:
            return False  # a UNIX socket, or an address the server could not tell
        return any(address in network for network in self.networks)

    def _scrape(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        """The metrics, to an allowed caller with the token (when one is set)."""
        method = environ.get("REQUEST_METHOD")
        if method not in ("GET", "HEAD"):
            return ApiError.from_http(405, None, {"Allow": "GET, HEAD"})(environ, start_response)
        if self.token:
            scheme, _, given = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
            if not given:
                return ApiError.unauthorized("is missing", scheme="Bearer")(environ, start_response)
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self.token):
                return ApiError.unauthorized("is invalid", scheme="Bearer")(environ, start_response)
        if environ.get("wsgi.multiprocess") and not self.metrics.multiprocess:
            # Each process would answer with its own counts, a different one at each scrape.
            needed = "need CONDUIT_METRICS_DIR: this server runs several processes"
            return ApiError.unavailable("metrics", message=needed)(environ, start_response)
        body, content_type = self.metrics.exposition(environ.get("HTTP_ACCEPT", ""))
        response = Response(body, content_type=content_type, headers={"Cache-Control": "no-store"})
        return response(environ, start_response)
