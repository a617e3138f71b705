"""Never reuse ids on SQLite: users, articles and comments become AUTOINCREMENT.

Without it SQLite hands the highest rowid out again once its row is deleted, so a
deleted user's token could name the next account. PostgreSQL's sequences never
go back, so there is nothing to do there. The tables are copied (batch mode),
rows and ids kept; foreign keys are off during the copy (see env.py).

Revision ID: 1c28abc0652e
Revises: 015feb240ee1
Create Date: 2026-11-25 22:44:17.503386+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '1c28abc0652e'
down_revision: str | None = '015feb240ee1'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The tables whose ids leave the service (in tokens and URLs).
TABLES = ("users", "articles", "comments")


def _recreate(autoincrement: bool) -> None:
    if op.get_context().dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}):
            pass


def upgrade() -> None:
    _recreate(True)


def downgrade() -> None:
    _recreate(False)
