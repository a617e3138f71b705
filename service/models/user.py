"""User and the ``follows`` association."""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, String, Table, Text, false
from sqlalchemy.orm import Mapped, mapped_column, query_expression

from service.models.base import Base, Timestamps

#: Who follows whom. The primary key serves "does A follow B" and the feed's
#: "whom does A follow"; the index serves "who follows B".
follows = Table(
    "follows",
    Base.metadata,
    Column("follower_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("followed_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Index(None, "followed_id"),
)


class User(Timestamps, Base):
    """A registered account; its public face is the profile."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    bio: Mapped[str | None] = mapped_column(Text)
    image: Mapped[str | None] = mapped_column(String(2048))

    #: Whether the viewer follows this user; filled by the query that loads it
    #: (``queries.following_expr``), false when nobody asked.
    following: Mapped[bool] = query_expression(default_expr=false())

    def __repr__(self) -> str:
        return f"User(id={self.id!r}, username={self.username!r})"
