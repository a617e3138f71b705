"""``conduit users``: account administration, through the same operations as the API."""

from __future__ import annotations

from typing import Any

import click
from marshmallow import Schema, ValidationError
from sqlalchemy.orm import Session

from schemas.users import NewUserSchema, UpdateUserSchema
from service import queries
from service.cli.base import transaction
from service.errors import ApiError
from service.models import User
from service.ops import users as ops


@click.group()
def users() -> None:
    """Manage accounts."""


def _validated(schema: Schema, **values: Any) -> dict[str, Any]:
    """The values as the API's own schema loads them; its messages as the error."""
    try:
        return dict(schema.load(values))
    except ValidationError as exc:
        messages = "; ".join(f"{field}: {', '.join(map(str, m))}" for field, m in exc.messages_dict.items())
        raise click.ClickException(messages) from None


def _named(session: Session, username: str) -> User:
    try:
        return queries.user_by_name(session, username)
    except ApiError:
        raise click.ClickException(f"no user named {username!r}") from None


@users.command("create")
@click.option("--username", required=True)
@click.option("--email", required=True)
@click.password_option(help="Prompted for (twice) when not given.")
def create(username: str, email: str, password: str) -> None:
    """Create an account."""
    fields = _validated(NewUserSchema(), username=username, email=email, password=password)  # type: ignore[no-untyped-call]
    with transaction() as session:
        user = ops.register(session, **fields)
        click.echo(f"created user {user.username} (id {user.id})")


@users.command("list")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1))
def list_(limit: int) -> None:
    """List accounts, newest first."""
    with transaction() as session:
        found, total = ops.newest(session, limit)
        for user in found:
            click.echo(f"{user.id}\t{user.username}\t{user.email}\t{user.created_at:%Y-%m-%d %H:%M}")
    click.echo(f"{len(found)} of {total} users", err=True)


@users.command("set-password")
@click.argument("username")
@click.password_option(help="Prompted for (twice) when not given.")
def set_password(username: str, password: str) -> None:
    """Set USERNAME's password; every token issued before stops working."""
    fields = _validated(UpdateUserSchema(), password=password)  # type: ignore[no-untyped-call]
    with transaction() as session:
        ops.update_user(session, _named(session, username), **fields)
    click.echo(f"password of {username} changed")


@users.command("revoke-tokens")
@click.argument("username")
def revoke_tokens(username: str) -> None:
    """Sign USERNAME out everywhere: every token issued so far stops working."""
    with transaction() as session:
        ops.revoke_tokens(_named(session, username))
    click.echo(f"every token of {username} revoked")


@users.command("delete")
@click.argument("username")
@click.confirmation_option(prompt="Delete this user with their articles, comments and favorites?")
def delete(username: str) -> None:
    """Delete USERNAME and everything they wrote."""
    with transaction() as session:
        ops.delete_user(session, _named(session, username))
    click.echo(f"deleted user {username}")
