"""Signed-in writes that carried an ``Idempotency-Key``, with the answer each got."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.models.base import Base, UTCDateTime, utcnow


class IdempotencyKey(Base):
    """One client's key for one write: a retry with it gets this answer instead of a second write.

    Stored in the write's own transaction, so it exists exactly when the write
    was committed. ``status`` and ``body`` are NULL until the write has been
    answered (inside that same transaction, so never NULL once visible).
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("user_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    #: SHA-256 of the method, path, query and body: the same key on another request is refused.
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[int | None]
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
