"""Comments: an article's comments (or its absence) in one statement, and single comments."""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import (
    Executable,
    bindparam,
    select,
)
from sqlalchemy.orm import Session

from service.errors import ApiError
from service.models import Article, Comment, User
from service.queries.rows import CommentRow, ProfileRow, Reads, connection_of, follows_user


def _comment_columns(signed_in: bool) -> list[Any]:
    return [
        Comment.id,
        Comment.created_at,
        Comment.updated_at,
        Comment.body,
        User.username,
        User.bio,
        User.image,
        follows_user(signed_in).label("following"),
    ]


def _comment_row(row: Any) -> CommentRow:
    comment_id, created_at, updated_at, body, username, bio, image, following = row  # by position: see _article_row
    return CommentRow(comment_id, created_at, updated_at, body, ProfileRow(username, bio, image, bool(following)))


@functools.cache
def _comments_statement(signed_in: bool) -> Executable:
    """The article (always one row, so a missing article is told from one without comments) and its comments."""
    return (
        select(*_comment_columns(signed_in))
        .select_from(Article)
        .outerjoin(Comment, Comment.article_id == Article.id)
        .outerjoin(User, User.id == Comment.author_id)
        .where(Article.slug == bindparam("slug"))
        .order_by(Comment.created_at.desc(), Comment.id.desc())
    )


def comments_by_slug(reads: Reads, slug: str, viewer_id: int | None) -> list[CommentRow]:
    """The article's comments, newest first, with authors as the viewer sees them, in one statement.

    :raises ApiError: 404 ``article`` if there is no such article.
    """
    rows = (
        connection_of(reads)
        .execute(_comments_statement(viewer_id is not None), {"slug": slug, "viewer": viewer_id})
        .all()
    )
    if not rows:
        raise ApiError.not_found("article")
    return [_comment_row(row) for row in rows if row[0] is not None]


@functools.cache
def _comment_statement(signed_in: bool) -> Executable:
    return (
        select(*_comment_columns(signed_in))
        .join_from(Comment, User, User.id == Comment.author_id)
        .where(Comment.id == bindparam("comment_id"))
    )


def comment_row(session: Session, comment_id: int, viewer_id: int | None) -> CommentRow:
    """One comment as the viewer sees it (the reply to a new comment), in one statement.

    :raises ApiError: 404 ``comment`` if there is no such comment.
    """
    stmt = _comment_statement(viewer_id is not None)
    row = connection_of(session).execute(stmt, {"comment_id": comment_id, "viewer": viewer_id}).one_or_none()
    if row is None:
        raise ApiError.not_found("comment")
    return _comment_row(row)


def comment_by_id(session: Session, comment_id: int) -> Comment:
    """One comment, for a write that checks whose and where it is.

    :raises ApiError: 404 ``comment`` if there is no such comment.
    """
    comment = session.get(Comment, comment_id)
    if comment is None:
        raise ApiError.not_found("comment")
    return comment
