"""What every admin command shares: database-only settings, one transaction, clear failures."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from service import db, surrogates
from service.config import ConfigError, Settings, database_url_from_env, instance_path_from_env
from service.db import describe_error
from service.errors import ApiError
from service.middleware.cache import OWED_FILE, VersionedStore
from service.stores import make_cache


def database_settings() -> Settings:
    """Settings for commands that only touch the database.

    Migrations and user administration must work in a release step that is not
    given the token secret, so the secret check is not applied here.
    """
    return Settings(
        env="testing",
        secret_key="(admin commands sign no tokens)",
        database_url=database_url_from_env(),
        instance_path=instance_path_from_env(),
        # What a command changes is forgotten in the service's own response cache.
        cache_url=Settings.read("cache_url"),
        cache_key_prefix=Settings.read("cache_key_prefix"),
        cache_ttl=Settings.read("cache_ttl"),
    )


def load_settings() -> Settings:
    """The service's settings, or a clear error naming the bad variable."""
    try:
        return Settings.from_env()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@contextmanager
def transaction() -> Iterator[Session]:
    """One transaction: commit if the block succeeds, roll back otherwise.

    Once committed, what the operations changed is forgotten in the service's
    response cache, exactly as after the API's writes. An ``ApiError`` from an
    operation (a taken name, an unknown user) becomes its message on stderr and
    exit code 1.
    """
    settings = database_settings()
    engine = db.make_engine(settings)
    session = db.make_session_factory(engine)()
    try:
        yield session
        session.commit()
        _forget(settings, surrogates.recorded(session.info))
    except ApiError as exc:
        session.rollback()
        raise click.ClickException("; ".join(f"{k} {', '.join(v)}" for k, v in exc.messages.items())) from None
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
        engine.dispose()


def _forget(settings: Settings, changed: frozenset[str]) -> None:
    """Forget ``changed`` in the response cache; say so when it cannot be reached."""
    if not changed:
        return
    store = VersionedStore(
        make_cache(settings), settings.cache_key_prefix, settings.instance_path / OWED_FILE, settings.cache_ttl
    )
    if not store.forget(changed):
        click.echo(
            "warning: the response cache could not be reached; this host's workers will forget the change"
            f" when it is back, others may serve what it holds for up to {settings.cache_ttl} s",
            err=True,
        )


class Group(click.Group):
    """Database failures become one clear line on stderr and exit code 1, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SQLAlchemyError as exc:
            raise click.ClickException(f"database error: {describe_error(exc)}") from None
