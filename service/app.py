"""The application factory: the one place where the layers are composed.

``create_app(settings)`` builds the engine and session factory, migrates the
embedded database if asked to, builds the URL map and dispatcher, and stacks
the middleware. Tests pass their own collaborators instead of patching globals.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from service import db, routing
from service.config import Settings
from service.middleware.cors import CorsMiddleware
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


def create_app(settings: Settings, *, session_factory: sessionmaker[Session] | None = None) -> ConduitApp:
    """Build the WSGI application.

    :param settings: the configuration.
    :param session_factory: sessions for requests; by default one bound to a
        new engine for ``settings.database_url``.
    """
    engine = None
    if session_factory is None:
        engine = db.make_engine(settings)
        if settings.auto_migrate:
            db.upgrade_to_head(engine, settings)
            # Drop the migration's pooled connection: a server that forks after
            # create_app (gunicorn --preload) must not share it between workers.
            engine.dispose()
        session_factory = db.make_session_factory(engine)
    dispatcher = Dispatcher(routing.build_map(), routing.ALL_ROUTES, settings, session_factory)
    wsgi: Any = dispatcher
    wsgi = CorsMiddleware(wsgi, settings.cors_origins)
    wsgi = RequestLogMiddleware(wsgi)
    return ConduitApp(wsgi, dispatcher, engine)
