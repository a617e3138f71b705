"""Comment on an article."""

from __future__ import annotations

from sqlalchemy import ForeignKey, Index, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from service.models.base import Base, Timestamps
from service.models.user import User


class Comment(Timestamps, Base):
    """A comment; deleted with its article or its author."""

    __tablename__ = "comments"
    # sqlite_autoincrement: an id in a client's hands never names a newer comment.
    __table_args__ = (Index(None, "article_id", "created_at"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(primary_key=True)
    body: Mapped[str] = mapped_column(Text)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"))
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)

    author: Mapped[User] = relationship(lazy="raise")

    def __repr__(self) -> str:
        return f"Comment(id={self.id!r}, article_id={self.article_id!r})"
