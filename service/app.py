"""The application factory: the one place where the layers are composed.

``create_app(settings)`` builds the engine and session factory, migrates the
embedded database if asked to, builds the URL map and dispatcher, and stacks
the middleware. Tests pass their own collaborators instead of patching globals.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cachelib import BaseCache
from limits.strategies import RateLimiter
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.middleware.proxy_fix import ProxyFix

from service import db, openapi, routing
from service.config import Settings
from service.middleware.body import RequestBodyMiddleware
from service.middleware.cache import ResponseCacheMiddleware, make_cache, probe
from service.middleware.cors import CorsMiddleware
from service.middleware.docs import DocsMiddleware
from service.middleware.ratelimit import RateLimitMiddleware, limits_from, make_limiter
from service.middleware.requestlog import RequestLogMiddleware
from service.web import Dispatcher


class ConduitApp:
    """The WSGI application, with handles on what it was built from."""

    def __init__(self, wsgi: Any, dispatcher: Dispatcher, engine: Engine | None) -> None:
        self.wsgi = wsgi
        self.dispatcher = dispatcher
        self.engine = engine

    @property
    def settings(self) -> Settings:
        """The settings the app was built with."""
        return self.dispatcher.settings

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        return self.wsgi(environ, start_response)  # type: ignore[no-any-return]


def create_app(
    settings: Settings,
    *,
    session_factory: sessionmaker[Session] | None = None,
    limiter: RateLimiter | None = None,
    cache: BaseCache | None = None,
) -> ConduitApp:
    """Build the WSGI application.

    The middleware, outermost first: request log, ProxyFix (only for trusted
    proxies), CORS (so that 429s are readable by browsers), API docs, request
    bodies read whole (one size rule for every framing), rate limiting (before
    any work), response cache, then the dispatcher.

    :param settings: the configuration.
    :param session_factory: sessions for requests; by default one bound to a
        new engine for ``settings.database_url`` (and, for read-only requests,
        its autocommit twin: no BEGIN/COMMIT round trips).
    :param limiter: a ``limits`` strategy; by default from the settings.
    :param cache: a cachelib cache; by default from the settings.
    """
    engine = None
    read_session_factory = None
    if session_factory is None:
        engine = db.make_engine(settings)
        if settings.auto_migrate:
            db.upgrade_to_head(engine, settings)
            # Drop the migration's pooled connection: a server that forks after
            # create_app (gunicorn --preload) must not share it between workers.
            engine.dispose()
        session_factory = db.make_session_factory(engine)
        read_session_factory = db.make_read_session_factory(engine)
    cache = cache if cache is not None else make_cache(settings)
    probes: dict[str, Any] = {"cache": lambda: probe(cache)}
    required: set[str] = set()
    if settings.ratelimit_enabled:
        limiter = limiter if limiter is not None else make_limiter(settings)
        probes["rate_limit_storage"] = limiter.storage.check
        if not settings.ratelimit_swallow_errors:
            required.add("rate_limit_storage")  # failing closed: no storage, no service
    dispatcher = Dispatcher(
        routing.build_map(),
        routing.ALL_ROUTES,
        settings,
        session_factory,
        probes,
        frozenset(required),
        read_session_factory=read_session_factory,
    )
    wsgi: Any = dispatcher
    wsgi = ResponseCacheMiddleware(
        wsgi, cache, settings.cache_ttl, settings.cache_key_prefix, min_uses=settings.cache_min_uses
    )
    if limiter is not None:
        wsgi = RateLimitMiddleware(
            wsgi,
            limiter,
            limits_from(settings),
            secret=settings.secret_key,
            key_prefix=settings.ratelimit_key_prefix,
            headers_enabled=settings.ratelimit_headers_enabled,
            swallow_errors=settings.ratelimit_swallow_errors,
            max_body=settings.max_body_bytes,
        )
    wsgi = RequestBodyMiddleware(wsgi, settings.max_body_bytes)
    wsgi = DocsMiddleware(wsgi, openapi.build_spec())
    wsgi = CorsMiddleware(wsgi, settings.cors_origins)
    if settings.trusted_proxy_hops:
        # Believe X-Forwarded-For only as deep as there are proxies of ours in front.
        wsgi = ProxyFix(wsgi, x_for=settings.trusted_proxy_hops, x_proto=settings.trusted_proxy_hops)
    wsgi = RequestLogMiddleware(wsgi)
    return ConduitApp(wsgi, dispatcher, engine)
