"""What a write looks up before it changes articles: ids, and what the change will make the shared reads forget."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.errors import ApiError
from service.models import Article, Comment, Tag, User, article_tags, favorites


def article_id_by_slug(session: Session, slug: str) -> tuple[int, int]:
    """``(id, author_id)`` of the article, for writes that need no more.

    :raises ApiError: 404 ``article`` if there is no such article.
    """
    row = session.execute(select(Article.id, Article.author_id).where(Article.slug == slug)).one_or_none()
    if row is None:
        raise ApiError.not_found("article")
    return row.id, row.author_id


def tags_in_use_elsewhere(session: Session, article_id: int, names: Iterable[str]) -> set[str]:
    """Which of the tag ``names`` some article other than ``article_id`` carries (one statement)."""
    wanted = list(names)
    if not wanted:
        return set()
    stmt = (
        select(Tag.name)
        .join(article_tags, article_tags.c.tag_id == Tag.id)
        .where(Tag.name.in_(wanted), article_tags.c.article_id != article_id)
        .distinct()
    )
    return set(session.scalars(stmt))


def article_audience(session: Session, article_id: int) -> tuple[list[str], list[str]]:
    """The article's tag names and the usernames of those who favorited it (before a delete)."""
    tags = session.scalars(
        select(Tag.name)
        .join(article_tags, article_tags.c.tag_id == Tag.id)
        .where(article_tags.c.article_id == article_id)
    ).all()
    fans = session.scalars(
        select(User.username)
        .join(favorites, favorites.c.user_id == User.id)
        .where(favorites.c.article_id == article_id)
    ).all()
    return list(tags), list(fans)


def articles_of(session: Session, author_id: int) -> list[tuple[int, str]]:
    """``(id, slug)`` of every article by the author (before the account is deleted)."""
    rows = session.execute(select(Article.id, Article.slug).where(Article.author_id == author_id))
    return [(row.id, row.slug) for row in rows]


def slugs_commented_by(session: Session, user_id: int) -> list[str]:
    """The slugs of the articles the user commented on."""
    stmt = select(Article.slug).join(Comment, Comment.article_id == Article.id).where(Comment.author_id == user_id)
    return list(session.scalars(stmt.distinct()))


def slugs_favorited_by(session: Session, user_id: int) -> list[str]:
    """The slugs of the articles the user favorited."""
    stmt = (
        select(Article.slug).join(favorites, favorites.c.article_id == Article.id).where(favorites.c.user_id == user_id)
    )
    return list(session.scalars(stmt))
