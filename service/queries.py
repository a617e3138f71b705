"""Read-side query builders and get-or-404 helpers shared by the ops.

Every loader states what it loads (relationships are ``lazy="raise"``), and the
viewer-dependent attributes (``following``, ``favorited``, ``favorites_count``)
are computed in SQL, so a page of articles costs a fixed number of statements
whatever its length: count, page, authors, tags.
Imports models and errors only; knows nothing about HTTP requests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, false, func, select
from sqlalchemy.orm import Session, selectinload, with_expression

from service.errors import ApiError
from service.models import Article, Comment, Tag, User, article_tags, favorites, follows

#: Loads of objects that carry viewer-dependent expressions must overwrite what
#: the identity map already holds (e.g. the author after a follow in the same request).
_FRESH = {"populate_existing": True}


def following_expr(viewer_id: int | None) -> ColumnElement[bool]:
    """SQL for "the viewer follows ``User``"; constant false for anonymous viewers."""
    if viewer_id is None:
        return false()
    return exists().where(follows.c.follower_id == viewer_id, follows.c.followed_id == User.id)


def favorited_expr(viewer_id: int | None) -> ColumnElement[bool]:
    """SQL for "the viewer favorited ``Article``"; constant false for anonymous viewers."""
    if viewer_id is None:
        return false()
    return exists().where(favorites.c.user_id == viewer_id, favorites.c.article_id == Article.id)


def favorites_count_expr() -> ColumnElement[int]:
    """SQL for the number of users who favorited ``Article``."""
    return select(func.count()).where(favorites.c.article_id == Article.id).scalar_subquery()


def _article_loads(viewer_id: int | None) -> tuple[Any, ...]:
    return (
        with_expression(Article.favorited, favorited_expr(viewer_id)),
        with_expression(Article.favorites_count, favorites_count_expr()),
        selectinload(Article.author).with_expression(User.following, following_expr(viewer_id)),
        selectinload(Article.tags),
    )


def user_by_id(session: Session, user_id: int) -> User | None:
    """The user with that id, or None."""
    return session.get(User, user_id)


def user_by_email(session: Session, email: str) -> User | None:
    """The user with that (lower-case) email, or None."""
    return session.scalars(select(User).where(User.email == email)).one_or_none()


def named(username: str) -> ColumnElement[bool]:
    """SQL for "``User`` has this name": usernames are one whatever their case."""
    return User.username_lower == username.lower()


def taken_fields(session: Session, exclude_id: int | None = None, **values: str) -> list[str]:
    """Which of ``username``/``email`` already belong to another user (a username in any case)."""
    taken = []
    for field, value in values.items():
        stmt = select(User.id).where(named(value) if field == "username" else getattr(User, field) == value)
        if exclude_id is not None:
            stmt = stmt.where(User.id != exclude_id)
        if session.scalars(stmt.limit(1)).first() is not None:
            taken.append(field)
    return taken


def profile_by_username(session: Session, username: str, viewer_id: int | None) -> User:
    """The user as a profile seen by the viewer; ``JAKE`` finds ``jake``.

    :raises ApiError: 404 ``profile`` if there is no such user.
    """
    stmt = (
        select(User)
        .where(named(username))
        .options(with_expression(User.following, following_expr(viewer_id)))
        .execution_options(**_FRESH)
    )
    user = session.scalars(stmt).one_or_none()
    if user is None:
        raise ApiError.not_found("profile")
    return user


def article_by_slug(session: Session, slug: str, viewer_id: int | None) -> Article:
    """The article with author, tags and viewer flags.

    :raises ApiError: 404 ``article`` if there is no such article.
    """
    stmt = select(Article).where(Article.slug == slug).options(*_article_loads(viewer_id))
    article = session.scalars(stmt.execution_options(**_FRESH)).one_or_none()
    if article is None:
        raise ApiError.not_found("article")
    return article


def article_id_by_slug(session: Session, slug: str) -> tuple[int, int]:
    """``(id, author_id)`` of the article, for writes that need no more.

    :raises ApiError: 404 ``article`` if there is no such article.
    """
    row = session.execute(select(Article.id, Article.author_id).where(Article.slug == slug)).one_or_none()
    if row is None:
        raise ApiError.not_found("article")
    return row.id, row.author_id


def _page(
    session: Session, stmt: Select[Article], viewer_id: int | None, limit: int, offset: int
) -> tuple[Sequence[Article], int]:
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    if total <= offset:
        return [], total
    page = (
        stmt.order_by(Article.created_at.desc(), Article.id.desc())
        .limit(limit)
        .offset(offset)
        .options(*_article_loads(viewer_id))
        .execution_options(**_FRESH)
    )
    return session.scalars(page).all(), total


def articles_page(
    session: Session,
    viewer_id: int | None,
    *,
    tag: str | None = None,
    author: str | None = None,
    favorited: str | None = None,
    limit: int = 20,
    offset: int = 0,
) -> tuple[Sequence[Article], int]:
    """A page of articles matching every given filter, newest first, and the total.

    :param tag: tag name; :param author: author's username;
    :param favorited: username of a user who favorited the article.
    """
    stmt = select(Article)
    if tag is not None:
        stmt = stmt.where(
            Article.id.in_(
                select(article_tags.c.article_id).join(Tag, Tag.id == article_tags.c.tag_id).where(Tag.name == tag)
            )
        )
    if author is not None:
        stmt = stmt.where(Article.author_id.in_(select(User.id).where(named(author))))
    if favorited is not None:
        stmt = stmt.where(
            Article.id.in_(
                select(favorites.c.article_id).join(User, User.id == favorites.c.user_id).where(named(favorited))
            )
        )
    return _page(session, stmt, viewer_id, limit, offset)


def feed_page(session: Session, viewer_id: int, *, limit: int = 20, offset: int = 0) -> tuple[Sequence[Article], int]:
    """A page of articles by authors the viewer follows, newest first, and the total."""
    followed = select(follows.c.followed_id).where(follows.c.follower_id == viewer_id)
    return _page(session, select(Article).where(Article.author_id.in_(followed)), viewer_id, limit, offset)


def comments_of(session: Session, article_id: int, viewer_id: int | None) -> Sequence[Comment]:
    """The article's comments, newest first, with authors as the viewer sees them."""
    stmt = (
        select(Comment)
        .where(Comment.article_id == article_id)
        .order_by(Comment.created_at.desc(), Comment.id.desc())
        .options(selectinload(Comment.author).with_expression(User.following, following_expr(viewer_id)))
        .execution_options(**_FRESH)
    )
    return session.scalars(stmt).all()


def comment_by_id(session: Session, comment_id: int, viewer_id: int | None) -> Comment:
    """One comment with its author as the viewer sees them.

    :raises ApiError: 404 ``comment`` if there is no such comment.
    """
    stmt = (
        select(Comment)
        .where(Comment.id == comment_id)
        .options(selectinload(Comment.author).with_expression(User.following, following_expr(viewer_id)))
        .execution_options(**_FRESH)
    )
    comment = session.scalars(stmt).one_or_none()
    if comment is None:
        raise ApiError.not_found("comment")
    return comment


def tag_names(session: Session) -> list[str]:
    """Every tag carried by at least one article, alphabetical."""
    in_use = exists().where(article_tags.c.tag_id == Tag.id)
    return list(session.scalars(select(Tag.name).where(in_use).order_by(Tag.name)))
