"""Make usernames unique whatever their case: ``username_lower`` with a unique constraint.

Existing clashes (``jake`` and ``JAKE``) are settled first: the oldest account
keeps its name and each later one is renamed ``<name>_<id>`` (accounts sign in
by email, so nobody is locked out). Lookups by name compare ``username_lower``,
so the old unique constraint on ``username`` is dropped.

Revision ID: 399757575354
Revises: 1c28abc0652e
Create Date: 2026-11-25 22:46:18.671012+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '399757575354'
down_revision: str | None = '1c28abc0652e'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Later holders of a name that differs only in case: renamed to "<name>_<id>" (at most 64 characters).
RENAME_CLASHES = """
UPDATE users SET username = substr(username, 1, 52) || '_' || CAST(id AS VARCHAR(11))
WHERE id IN (
    SELECT id FROM (
        SELECT id, row_number() OVER (PARTITION BY lower(username) ORDER BY id) AS n FROM users
    ) ranked WHERE n > 1
)
"""


def _sqlite_kwargs() -> dict[str, object]:
    # A batch copy on SQLite must keep the table AUTOINCREMENT (previous revision).
    return {"sqlite_autoincrement": True} if op.get_context().dialect.name == "sqlite" else {}


def upgrade() -> None:
    # squawk-ignore require-lock-timeout, require-statement-timeout, adding-not-nullable-field,
    # squawk-ignore ban-drop-constraint, constraint-missing-not-valid, disallowed-unique-constraint: it ran
    # on every database at the release of 2026-11-25, when the service had no production data yet; what it
    # does (a full scan of `users` under ACCESS EXCLUSIVE) is why docs/deploy.md's rules for migrations
    # exist. A database still before this revision upgrades with the site stopped.
    # The dropped constraint is replaced in the same transaction by a stronger one (case-insensitive).
    op.execute(RENAME_CLASHES)
    op.add_column('users', sa.Column('username_lower', sa.String(length=64), nullable=True))
    op.execute("UPDATE users SET username_lower = lower(username)")
    with op.batch_alter_table('users', table_kwargs=_sqlite_kwargs()) as batch_op:
        batch_op.alter_column('username_lower', existing_type=sa.String(length=64), nullable=False)
        batch_op.drop_constraint(batch_op.f('uq_users_username'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_users_username_lower'), ['username_lower'])


def downgrade() -> None:
    with op.batch_alter_table('users', table_kwargs=_sqlite_kwargs()) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_users_username_lower'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_users_username'), ['username'])
        batch_op.drop_column('username_lower')
