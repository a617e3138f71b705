"""Warm a new worker before it takes its first connection.

A worker's first requests pay for what every later one finds ready: the
database and Redis connections, SQLAlchemy's compiled statements, the first
query plans. Behind a balancer, a host that has just started (a rolling
release) or a worker that has just replaced another is sent real traffic as
soon as it listens, so those first requests were a client's. A few reads of
the app's commonest kinds, run in-process before the worker accepts anything,
pay for them instead. Each is an ordinary request (it is logged, with the
request id ``warmup``, but not counted in the metrics); what it answers does not matter, and a database that
is down only makes them quick 503s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.test import EnvironBuilder

from service import environ_keys

#: Readiness (the write pool, the schema revision), then a read of each common kind on the read pool.
PATHS = ("/readyz", "/api/tags", "/api/articles?limit=20", "/api/articles/-warmup-", "/api/profiles/-warmup-")


def warm(app: Callable[[dict[str, Any], Any], Iterable[bytes]]) -> None:
    """Send :data:`PATHS` through ``app``, reading each answer to the end.

    Stops at the first 5xx: a database or storage that is down has nothing to
    warm, and each further try could wait out a connect timeout.
    """
    statuses: list[str] = []
    for path in PATHS:
        environ = EnvironBuilder(path=path, headers=[("X-Request-ID", "warmup")]).get_environ()
        environ[environ_keys.UNCOUNTED] = "warm-up"
        body = app(environ, lambda status, headers, exc_info=None: statuses.append(status))
        try:
            for _ in body:
                pass
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()
        if statuses and statuses[-1].startswith("5"):
            return
