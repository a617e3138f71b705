"""Alembic environment: the models' metadata, and the URL from the environment.

A caller that already holds a connection (the app's auto-migration, tests)
passes it in ``config.attributes["connection"]``.
"""

from __future__ import annotations

from logging.config import fileConfig
from pathlib import Path

from alembic import context
from sqlalchemy import Connection, create_engine, pool
from sqlalchemy.engine import make_url

from service.config import database_url_from_env
from service.db import tune_sqlite
from service.models import Base

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _url() -> str:
    return config.get_main_option("sqlalchemy.url") or database_url_from_env()


def _configure(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # A batch copy drops and recreates a table; with foreign keys on, dropping
        # ``users`` would cascade-delete every follow, article and comment. SQLite
        # ignores this pragma inside a transaction, so the connection must not be in one.
        if connection.in_transaction():
            raise RuntimeError("SQLite migrations need a connection outside a transaction")
        _sqlite_foreign_keys(connection, on=False)
    try:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            compare_type=True,
            # SQLite cannot ALTER most things in place; batch mode copies the table.
            render_as_batch=sqlite,
        )
        with context.begin_transaction():
            context.run_migrations()
            if sqlite and connection.exec_driver_sql("PRAGMA foreign_key_check").first() is not None:
                raise RuntimeError("the migration left rows that break a foreign key; rolled back")
        if connection.in_transaction():  # a connection handed in stays in the transaction it began: end it here
            connection.commit()
    finally:
        if sqlite:
            # Inside a transaction the pragma is a no-op: the connection would go back to its pool with foreign
            # keys off, and the app's next request on it would delete articles without their tags (issue 34).
            if connection.in_transaction():
                connection.rollback()
            _sqlite_foreign_keys(connection, on=True)


def _sqlite_foreign_keys(connection: Connection, *, on: bool) -> None:
    # Through the driver: SQLAlchemy would begin a transaction first.
    connection.connection.driver_connection.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")  # type: ignore[union-attr]


def run_migrations_offline() -> None:
    """Emit SQL to stdout instead of running it (``alembic upgrade head --sql``)."""
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run against a live database."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        return
    url = make_url(_url())
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)  # the instance folder, on first run
    engine = create_engine(url, poolclass=pool.NullPool)
    if url.get_backend_name() == "sqlite":
        # As the app's engine: SQLite's driver would otherwise run DDL outside the
        # migration's transaction, and a failed revision would leave half a schema.
        tune_sqlite(engine)
    with engine.connect() as connection:
        _configure(connection)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
