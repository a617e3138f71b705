"""Keep the token that changed the password: ``users.kept_token``.

A password change replaces the user's token stamp, which revokes every token
issued before it, except the one that made the change: its SHA-256 is kept
here, so the client that changed its password goes on signing in with it.
NULL (every existing row) keeps no token.

Revision ID: 5e1f0c2a7b93
Revises: d876ec52e0e4
Create Date: 2026-11-30 05:30:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5e1f0c2a7b93"
down_revision: str | None = "d876ec52e0e4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _sqlite_kwargs() -> dict[str, object]:
    return {"sqlite_autoincrement": True} if op.get_context().dialect.name == "sqlite" else {}


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        # Wait at most 2 s for the lock (a catalogue change, held for milliseconds): behind a long transaction
        # the revision fails, to be run again, instead of queueing every write to `users` behind it.
        op.execute("SET LOCAL lock_timeout = '2s'")
        op.execute("SET LOCAL statement_timeout = '10s'")
    op.add_column("users", sa.Column("kept_token", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users", table_kwargs=_sqlite_kwargs()) as batch_op:
        batch_op.drop_column("kept_token")
