"""Add token stamps: a random value per user that every token carries.

Replacing a user's stamp revokes every token issued before (password change,
sign-out everywhere, ``conduit users revoke-tokens``). Existing users get a random
stamp, so tokens issued before this revision (which carry none) must sign in again.

Revision ID: d876ec52e0e4
Revises: 399757575354
Create Date: 2026-11-25 22:47:19.775129+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'd876ec52e0e4'
down_revision: str | None = '399757575354'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: One random stamp per existing row, in each dialect's own SQL (so ``--sql`` works too).
RANDOM_STAMP = {
    "sqlite": "lower(hex(randomblob(8)))",
    "postgresql": "substr(replace(CAST(gen_random_uuid() AS TEXT), '-', ''), 1, 16)",
}


def _sqlite_kwargs() -> dict[str, object]:
    return {"sqlite_autoincrement": True} if op.get_context().dialect.name == "sqlite" else {}


def upgrade() -> None:
    # squawk-ignore require-lock-timeout, require-statement-timeout, adding-not-nullable-field: it ran
    # on every database at the release of 2026-11-25, when the service had no production data yet; what it
    # does (a full scan of `users` under ACCESS EXCLUSIVE) is why docs/deploy.md's rules for migrations
    # exist. A database still before this revision upgrades with the site stopped.
    op.add_column('users', sa.Column('token_stamp', sa.String(length=32), nullable=True))
    op.execute(f"UPDATE users SET token_stamp = {RANDOM_STAMP[op.get_context().dialect.name]}")
    with op.batch_alter_table('users', table_kwargs=_sqlite_kwargs()) as batch_op:
        batch_op.alter_column('token_stamp', existing_type=sa.String(length=32), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('users', table_kwargs=_sqlite_kwargs()) as batch_op:
        batch_op.drop_column('token_stamp')
