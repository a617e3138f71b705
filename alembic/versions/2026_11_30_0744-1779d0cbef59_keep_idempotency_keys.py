"""Keep idempotency keys: ``idempotency_keys``.

A signed-in write sent with an ``Idempotency-Key`` header stores the key and
its answer in its own transaction; a retry with the same key gets that answer
instead of being applied twice. Rows older than a day are deleted as the same
user sends new keys.

Revision ID: 1779d0cbef59
Revises: 7a4d2e9c1b05
Create Date: 2026-11-30 07:44:39.431532+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "1779d0cbef59"
down_revision: str | None = "7a4d2e9c1b05"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        # Wait at most 2 s for the lock (the new table's foreign key locks `users` for milliseconds): behind a
        # long transaction the revision fails, to be run again, instead of queueing every write to `users`.
        op.execute("SET LOCAL lock_timeout = '2s'")
        op.execute("SET LOCAL statement_timeout = '10s'")
    op.create_table(
        "idempotency_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        # Timezone-aware UTC: timestamptz on PostgreSQL, naive UTC text on SQLite (models.base.UTCDateTime).
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_idempotency_keys_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_keys")),
        sa.UniqueConstraint("user_id", "key", name=op.f("uq_idempotency_keys_user_id_key")),
    )


def downgrade() -> None:
    op.drop_table("idempotency_keys")
