"""What every admin command shares: database-only settings, one transaction, clear failures."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from service import db
from service.config import ConfigError, Settings, database_url_from_env, instance_path_from_env
from service.db import describe_error
from service.errors import ApiError
from service.queries.journal import Journal
from service.stores import make_cache, make_shared_reads
from service.unit_of_work import UnitOfWork


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
    """One transaction, through the unit of work the API's writes commit through.

    What the operations changed is forgotten in the service's shared reads as
    after an API write: recorded in the journal in the transaction when the
    cache is shared by hosts (Redis: the running hosts deliver it if this
    command cannot), and bumped after the commit (a host-local cache's bump
    that fails then is owed, as the API owes it). An ``ApiError`` (a taken
    name, an unknown user) becomes its message on stderr and exit code 1.
    """
    settings = database_settings()
    engine = db.make_engine(settings)
    shared = make_shared_reads(settings, make_cache(settings), journal=Journal(engine))
    work = UnitOfWork(db.make_session_factory(engine), (shared,))
    try:
        yield work.session
        work.commit()
    except ApiError as exc:
        work.rollback()
        raise click.ClickException("; ".join(f"{k} {', '.join(v)}" for k, v in exc.messages.items())) from None
    except BaseException:
        work.rollback()
        raise
    finally:
        work.close()
        engine.dispose()
    if shared.owes():
        click.echo(
            "warning: the response cache could not be reached; this host's workers will forget the change"
            " when it is back",
            err=True,
        )


class Group(click.Group):
    """Database failures become one clear line on stderr and exit code 1, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SQLAlchemyError as exc:
            raise click.ClickException(f"database error: {describe_error(exc)}") from None
