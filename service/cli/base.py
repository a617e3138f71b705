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
from service.errors import ApiError


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

    An ``ApiError`` from an operation (a taken name, an unknown user) becomes
    its message on stderr and exit code 1.
    """
    engine = db.make_engine(database_settings())
    session = db.make_session_factory(engine)()
    try:
        yield session
        session.commit()
    except ApiError as exc:
        session.rollback()
        raise click.ClickException("; ".join(f"{k} {', '.join(v)}" for k, v in exc.messages.items())) from None
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
        engine.dispose()


class Group(click.Group):
    """Database failures become one clear line on stderr and exit code 1, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SQLAlchemyError as exc:
            orig = getattr(exc, "orig", None) or exc
            first = str(orig).strip().splitlines()[0] if str(orig).strip() else ""
            raise click.ClickException(f"database error: {type(orig).__name__}: {first}") from None
