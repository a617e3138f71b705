"""One record per request, the log line and its count in the metrics; and the request id that ties lines together.

The id comes from ``X-Request-ID`` when the caller (a proxy) sent a sane one,
otherwise it is generated; either way it is returned in the response and put
in the WSGI environ for the dispatcher's error log. The line is written when
the body has been sent, so the duration covers the whole response. Only the
path is logged: no query string, no headers, so no token reaches the log.

The request is counted in the metrics (when they are on) as soon as the
application has its answer ready, before the server sends it, so a worker
killed after a client got its answer has counted it (and the latency
recorded is the service's own, not the client's network's); by the route
the router matched for it (``environ_keys.ROUTE``): its template,
``(unmatched)`` for a URL no route answers, ``(other)`` for what the router
never saw (the docs pages, CORS preflights). Scrapes of ``/metrics`` and a new
worker's warm-up reads are logged but not counted: no client sent them.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from service import environ_keys
from service.metrics import NO_METRICS, Metrics

#: What an incoming request id may look like; anything else is replaced.
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

access_log = logging.getLogger("service.access")


class RequestLogMiddleware:
    """Assign a request id and log method, path, status, duration, size, ids; count the request in ``metrics``."""

    def __init__(self, app: Any, metrics: Metrics = NO_METRICS) -> None:
        self.app = app
        self.metrics = metrics if metrics.enabled else None  # off: not even the call

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        started = time.perf_counter()
        incoming = environ.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if _VALID_ID.match(incoming) else secrets.token_hex(16)
        environ[environ_keys.REQUEST_ID] = request_id
        status_holder: list[str] = []

        def start_with_id(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status_holder.append(status)
            return start_response(status, [*headers, ("X-Request-ID", request_id)], exc_info)

        try:
            body = self.app(environ, start_with_id)
        except BaseException:
            if self.metrics is not None:  # the server answers 500 for what escapes the application
                _count(self.metrics, environ, 500, time.perf_counter() - started)
            raise
        counted_later = None
        if self.metrics is not None:
            if status_holder:  # counted before the server sends it: a client never sees an answer not yet counted
                _count(self.metrics, environ, int(status_holder[0][:3]), time.perf_counter() - started)
            else:
                counted_later = self.metrics  # an application that starts its answer as it is read
        return _Logged(body, environ, status_holder, started, counted_later)


@dataclass
class _Logged:
    """The response body, passed through; logs the request line on close() (and counts it, if it was not yet)."""

    body: Iterable[bytes]
    environ: dict[str, Any]
    status: list[str]
    started: float
    metrics: Metrics | None
    size: int = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.body:
            self.size += len(chunk)
            yield chunk

    def close(self) -> None:
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            if access_log.isEnabledFor(logging.INFO):  # else the line's fields are not even gathered
                self._log()
            if self.metrics is not None:
                status = int(self.status[0][:3]) if self.status else 500
                _count(self.metrics, self.environ, status, time.perf_counter() - self.started)

    def _log(self) -> None:
        environ = self.environ
        status = int(self.status[0].split(" ", 1)[0]) if self.status else 0
        duration_ms = round((time.perf_counter() - self.started) * 1000, 2)
        user_id = environ.get(environ_keys.USER_ID)
        access_log.info(
            "%s %s %s %.2fms %dB id=%s user=%s",
            environ.get("REQUEST_METHOD"),
            environ.get("PATH_INFO"),
            status,
            duration_ms,
            self.size,
            environ[environ_keys.REQUEST_ID],
            user_id if user_id is not None else "-",
            extra={
                "method": environ.get("REQUEST_METHOD"),
                "path": environ.get("PATH_INFO"),
                "status": status,
                "duration_ms": duration_ms,
                "size": self.size,
                "request_id": environ[environ_keys.REQUEST_ID],
                "user_id": user_id,
            },
        )


def _count(metrics: Metrics, environ: dict[str, Any], status: int, seconds: float) -> None:
    if environ_keys.UNCOUNTED in environ:
        return
    found = environ.get(environ_keys.ROUTE)
    route = found[0].template if type(found) is tuple else "(other)" if found is None else "(unmatched)"
    cache = environ.get(environ_keys.CACHE_OUTCOME, "none")
    metrics.request(route, environ.get("REQUEST_METHOD", ""), status, cache, seconds)
