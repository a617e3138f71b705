"""``/metrics``, to whoever the operator allows; nothing else.

Stacked only when metrics are on (``Settings.metrics_enabled``), just inside
ProxyFix, so the address it checks is the client's as the trusted proxies tell
it. (Requests are counted by the request log, which sees each one finish.)

Who may scrape: a request from an address outside ``CONDUIT_METRICS_ALLOW``
(when set) is passed on as if ``/metrics`` did not exist (the API's 404);
one without the bearer token ``CONDUIT_METRICS_TOKEN`` (when set) gets 401.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Sequence
from ipaddress import ip_address, ip_network
from typing import Any

from werkzeug.wrappers import Response

from service import environ_keys
from service.errors import ApiError
from service.metrics import Metrics

#: Where Prometheus reads the metrics (below the mount point, if any: ``/conduit/metrics``).
METRICS_PATH = "/metrics"


class MetricsEndpoint:
    """Serve ``/metrics`` to the allowed addresses with the token (when set); pass everything else on.

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
        return self.app(environ, start_response)  # type: ignore[no-any-return]

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
        environ[environ_keys.UNCOUNTED] = "scrape"
        body, content_type = self.metrics.exposition(environ.get("HTTP_ACCEPT", ""))
        response = Response(body, content_type=content_type, headers={"Cache-Control": "no-store"})
        return response(environ, start_response)
