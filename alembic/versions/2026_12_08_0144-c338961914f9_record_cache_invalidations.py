"""Record cache invalidations: ``cache_invalidations``.

A write that changes cached answers records the version names it bumps in its
own transaction, so that a write commits whether or not the shared cache can
be reached and every host delivers what the cache missed. A new table, empty
on every existing database: nothing is rewritten or locked beyond the
``CREATE``.

Revision ID: c338961914f9
Revises: 1779d0cbef59
Create Date: 2026-12-08 01:44:30.649372+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c338961914f9"
down_revision: str | None = "1779d0cbef59"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("SET LOCAL lock_timeout = '2s'")
        op.execute("SET LOCAL statement_timeout = '10s'")
    op.create_table(
        "cache_invalidations",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("tx", sa.BigInteger(), nullable=True),
        sa.Column("digests", sa.Text(), nullable=False),
        # Timezone-aware UTC: timestamptz on PostgreSQL, naive UTC text on SQLite (models.base.UTCDateTime).
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cache_invalidations")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_cache_invalidations_tx"), "cache_invalidations", ["tx"])
    op.create_index(op.f("ix_cache_invalidations_created_at"), "cache_invalidations", ["created_at"])


def downgrade() -> None:
    op.drop_table("cache_invalidations")
