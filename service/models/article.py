"""Article, Tag, and the ``article_tags`` and ``favorites`` associations."""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from service.models.base import Base, Timestamps, UTCDateTime, link_table
from service.models.user import User

#: Tags of an article. ``created_at`` is the article's, copied by a trigger
#: (``service.models.totals``), so that the index serves a ``?tag=`` page newest
#: first: the page costs its 20 entries, whatever the tag's size.
article_tags = link_table(
    "article_tags",
    ("article_id", "articles.id"),
    ("tag_id", "tags.id"),
    Column("created_at", UTCDateTime()),
    by_second=("created_at", "article_id"),
)

#: Who favorited what; the index serves "who favorited this article".
favorites = link_table("favorites", ("user_id", "users.id"), ("article_id", "articles.id"))


class Tag(Base):
    """A tag name, shared by every article that carries it."""

    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    #: How many articles carry the tag, kept by a trigger: the total of a ``?tag=`` list.
    articles_count: Mapped[int] = mapped_column(server_default=text("0"))

    def __repr__(self) -> str:
        return f"Tag({self.name!r})"


class Article(Timestamps, Base):
    """A published article.

    Relationships are ``lazy="raise"``: every query states what it loads, so an
    N+1 pattern fails loudly in tests instead of slowly in production.
    """

    __tablename__ = "articles"
    __table_args__ = (
        # Newest-first listing and its tie-breaker.
        Index(None, "created_at", "id"),
        # ?author= listing, newest first.
        Index(None, "author_id", "created_at"),
        # An id is never handed out twice, even after the newest row is deleted.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(255), unique=True)
    title: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(String(1024))
    body: Mapped[str] = mapped_column(Text)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    #: How many users favorited it, kept by a trigger: ``favoritesCount`` without counting.
    favorites_count: Mapped[int] = mapped_column(server_default=text("0"))

    author: Mapped[User] = relationship(lazy="raise")
    tags: Mapped[list[Tag]] = relationship(
        secondary=article_tags, order_by=Tag.name, lazy="raise", passive_deletes=True
    )

    def __repr__(self) -> str:
        return f"Article(id={self.id!r}, slug={self.slug!r})"
