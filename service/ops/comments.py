"""Comments on articles."""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.orm import Session

from service import queries
from service.errors import ApiError
from service.models import Comment, User
from service.shared_reads import surrogates


def add_comment(session: Session, actor: User, *, slug: str, body: str) -> queries.CommentRow:
    """Comment on an article.

    :raises ApiError: 404 ``article``.
    """
    article_id, _ = queries.article_id_by_slug(session, slug)
    comment = Comment(body=body, article_id=article_id, author_id=actor.id)
    session.add(comment)
    session.flush()
    surrogates.record(session.info, (surrogates.comments(slug),))
    return queries.comment_row(session, comment.id, actor.id)


def delete_comment(session: Session, actor: User, *, slug: str, comment_id: int) -> None:
    """Delete the actor's comment.

    :raises ApiError: 404 ``article`` or ``comment`` (also for a comment of
        another article); 403 ``comment`` if the actor did not write it.
    """
    article_id, _ = queries.article_id_by_slug(session, slug)
    comment = queries.comment_by_id(session, comment_id)
    if comment.article_id != article_id:
        raise ApiError.not_found("comment")
    if comment.author_id != actor.id:
        raise ApiError.forbidden("comment")
    session.execute(delete(Comment).where(Comment.id == comment.id))
    surrogates.record(session.info, (surrogates.comments(slug),))
