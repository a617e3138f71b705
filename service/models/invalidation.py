"""What each write made the shared cache forget, kept where every host can read it: ``cache_invalidations``.

A write that changes cached answers adds one row in its own transaction, so
the row exists exactly when the write committed, whether or not the cache
could be reached (``service.shared_reads.delivery``: every host delivers the
rows the cache has not had). Rows are deleted once older than the cache's
entries can be.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, Text
from sqlalchemy.orm import Mapped, mapped_column

from service.models.base import Base, UTCDateTime, utcnow


class CacheInvalidation(Base):
    """One committed write's version names, to be bumped in the shared cache.

    ``tx`` is the writing transaction's id on PostgreSQL (``pg_current_xact_id``):
    ids are handed out in one order and committed in another, and a reader
    knows every transaction below its snapshot's ``xmin`` has ended, so it
    reads on from there and misses none (SQLite commits one writer at a time,
    in ``id`` order, and leaves it NULL).
    """

    __tablename__ = "cache_invalidations"
    # sqlite_autoincrement: ids never go back once old rows are deleted (readers read on from the last id).
    __table_args__ = (Index(None, "tx"), Index(None, "created_at"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    tx: Mapped[int | None] = mapped_column(BigInteger())
    #: The version digests (``SharedReads.version_key`` without its prefix), space-separated.
    digests: Mapped[str] = mapped_column(Text())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
