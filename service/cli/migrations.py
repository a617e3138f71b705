"""``conduit db``: schema migrations (Alembic), wherever the package is installed."""

from __future__ import annotations

from typing import Any

import click
from alembic import command

from service import db
from service.config import database_url_from_env


@click.group("db")
def db_group() -> None:
    """Schema migrations (Alembic), wherever alembic.ini lives."""


def _alembic() -> Any:
    config = db.alembic_config(database_url_from_env())
    config.attributes["configure_logging"] = False
    return config


@db_group.command()
@click.argument("revision", default="head")
def upgrade(revision: str) -> None:
    """Upgrade the database to REVISION (default: head)."""
    command.upgrade(_alembic(), revision)
    click.echo(f"database upgraded to {revision}")


@db_group.command()
@click.argument("revision")
def downgrade(revision: str) -> None:
    """Downgrade the database to REVISION (e.g. -1, base)."""
    command.downgrade(_alembic(), revision)
    click.echo(f"database downgraded to {revision}")


@db_group.command()
def current() -> None:
    """Show the database's current revision."""
    command.current(_alembic(), verbose=False)


@db_group.command()
def history() -> None:
    """List the revisions, newest first."""
    command.history(_alembic())
