"""The application factory: the one place where the layers are composed.

``create_app(settings)`` opens the database (``db.Database``: engines,
sessions, the embedded database migrated if asked to), builds the shared reads
and the limiter, binds the route table, and stacks the middleware, each given
what it needs from the table (which routes may be shared, which rate-limit
scopes a request counts against, which methods exist) and the collaborators
it shares with the dispatcher.
Tests pass their own collaborators instead of patching globals.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

from cachelib import BaseCache
from limits.strategies import RateLimiter
from werkzeug.middleware.proxy_fix import ProxyFix

from service import __version__, db, route_table
from service.config import Settings
from service.db import Database
from service.dispatch import Dispatcher
from service.limiter import Limiter, limits_from
from service.metrics import Metrics, make_metrics
from service.middleware.body import RequestBodyMiddleware
from service.middleware.cors import CorsMiddleware
from service.middleware.docs import DocsMiddleware
from service.middleware.metrics import MetricsEndpoint
from service.middleware.ratelimit import RateLimitMiddleware
from service.middleware.requestlog import RequestLogMiddleware
from service.middleware.shared_hits import SharedHitsMiddleware
from service.ops.health import Storages
from service.queries.journal import Journal
from service.router import Route, Router
from service.shared_reads.store import VersionedStore
from service.stores import make_cache, make_limiter, make_shared_reads, readiness_probes

WSGIApp = Callable[[dict[str, Any], Any], Iterable[bytes]]


def create_app(
    settings: Settings,
    *,
    routes: tuple[Route, ...] = route_table.ALL_ROUTES,
    database: Database | None = None,
    limiter: RateLimiter | None = None,
    cache: BaseCache | VersionedStore | None = None,
    metrics: Metrics | None = None,
) -> WSGIApp:
    """Build the WSGI application.

    The collaborators, built once and handed to the layers that use them: the
    database, the shared reads (the middleware answers anonymous hits, the
    dispatcher the rest, the unit of work forgets what writes change), the
    limiter (the middleware counts addresses, the dispatcher signed-in users),
    the metrics.

    The middleware, outermost first: request log (which also counts each
    request in the metrics), ProxyFix (only for trusted proxies), ``/metrics``
    (only when it may be read), CORS (so that 429s are readable by browsers),
    API docs, request bodies read whole (one size rule for every framing), rate
    limiting by address (before any work), anonymous shared hits, then the dispatcher.

    :param settings: the configuration.
    :param routes: the operations served (tests serve a broken view this way).
    :param database: sessions and read engine; by default engines of its own
        for ``settings.database_url`` (``Database.for_settings``). Whoever passes
        one disposes of its engines.
    :param limiter: a ``limits`` strategy; by default from the settings.
    :param cache: a cachelib cache or a versioned store; by default from the settings.
    :param metrics: what the layers report to; by default from the settings (Prometheus, or nothing).
    """
    database = database if database is not None else Database.for_settings(settings)
    if metrics is None:
        metrics = make_metrics(settings, lambda: (__version__, _migration_head()))
    for pool, engine in database.engines().items():
        metrics.watch_pool(engine, pool)
    store = cache if cache is not None else make_cache(settings)
    shared = make_shared_reads(settings, store, metrics, _journal(database))
    if settings.ratelimit_enabled and limiter is None:
        limiter = make_limiter(settings)
    router = Router(routes)
    counting = _counting(settings, router, limiter, metrics) if limiter is not None else None

    storages = Storages(*readiness_probes(shared, limiter, settings))
    wsgi: Any = Dispatcher(
        router,
        settings,
        database,
        shared=shared,
        limiter=counting,
        metrics=metrics,
        collaborators={"storages": storages},
    )
    wsgi = SharedHitsMiddleware(wsgi, router.shares, shared)
    if counting is not None:
        wsgi = RateLimitMiddleware(wsgi, counting, metrics)
    wsgi = RequestBodyMiddleware(wsgi, settings.max_body_bytes)
    wsgi = DocsMiddleware(wsgi, functools.partial(_document, routes))
    wsgi = CorsMiddleware(wsgi, settings.cors_origins, router.methods)
    if metrics.enabled:
        wsgi = MetricsEndpoint(wsgi, metrics, allow=settings.metrics_allow, token=settings.metrics_token)
    if settings.trusted_proxy_hops:
        # Believe X-Forwarded-For only as deep as there are proxies of ours in front.
        wsgi = ProxyFix(wsgi, x_for=settings.trusted_proxy_hops, x_proto=settings.trusted_proxy_hops)
    return RequestLogMiddleware(wsgi, metrics)


def _counting(settings: Settings, router: Router, strategy: RateLimiter, metrics: Metrics) -> Limiter:
    """The limiter of the settings on ``strategy``, asking the router for each request's scopes."""
    return Limiter(
        strategy,
        limits_from(settings),
        scopes=router.limit_scopes,
        authenticates=router.authenticates,
        secret=settings.secret_key,
        key_prefix=settings.ratelimit_key_prefix,
        headers_enabled=settings.ratelimit_headers_enabled,
        swallow_errors=settings.ratelimit_swallow_errors,
        max_body=settings.max_body_bytes,
        metrics=metrics,
    )


def _journal(database: Database) -> Journal | None:
    """The journal of invalidations on the database's own engine (a cache shared by hosts delivers it)."""
    engines = database.engines()
    engine = engines.get("read", engines.get("write"))
    return Journal(engine) if engine is not None else None


def _migration_head() -> str:
    """The revision the code expects, for the build information; ``unknown`` without migration scripts."""
    try:
        return db.expected_head()
    except db.MigrationsMissing:
        return "unknown"


def _document(routes: tuple[Route, ...]) -> dict[str, Any]:
    """The OpenAPI document, built when first asked for: apispec is not loaded by a worker that never serves it."""
    from service import openapi

    return openapi.build_spec(routes)
