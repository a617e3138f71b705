"""Rate limiting by address, before any work: the ``limits`` verdicts of ``service.limiter``, as WSGI middleware.

A request over a limit is answered 429 (the RealWorld body, ``Retry-After``)
here and goes no further; a request with a well-signed token for a route that
checks it is left to the dispatcher, which counts it against its user once it
has read the account (``Limiter.defers``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from service.errors import ApiError
from service.limiter import Limiter
from service.metrics import NO_METRICS, Metrics


class RateLimitMiddleware:
    """Count each API request against its address's limits; 429 with the RealWorld body when over.

    :param metrics: told of each 503 when the storage fails closed (429s are counted by the limiter).
    """

    def __init__(self, app: Any, limiter: Limiter, metrics: Metrics = NO_METRICS) -> None:
        self.app = app
        self.limiter = limiter
        self.metrics = metrics

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        scopes = self.limiter.scopes(environ)
        if not scopes or self.limiter.defers(environ):
            return self.app(environ, start_response)  # type: ignore[no-any-return]
        try:
            headers = self.limiter.charge(environ, scopes, None)
        except ApiError as refusal:
            if refusal.status == 503:
                self.metrics.unavailable("rate_limit")
            return refusal(environ, start_response)
        if not headers:
            return self.app(environ, start_response)  # type: ignore[no-any-return]

        def start_with_headers(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, [*response_headers, *headers], exc_info)

        return self.app(environ, start_with_headers)  # type: ignore[no-any-return]
