"""Profiles and follows."""

from __future__ import annotations

from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service import queries
from service.errors import ApiError
from service.models import User, follows


def follow(session: Session, actor: User, *, username: str) -> queries.ProfileRow:
    """Follow a user; following twice is the same as once.

    :raises ApiError: 404 ``profile``; 403 ``profile`` when following oneself.
    """
    target = queries.user_by_name(session, username)
    if target.id == actor.id:
        raise ApiError.forbidden("profile", "cannot follow yourself")
    try:
        with session.begin_nested():
            session.execute(insert(follows).values(follower_id=actor.id, followed_id=target.id))
    except IntegrityError:
        pass  # followed already (perhaps by a concurrent request of the same user): same outcome
    return queries.profile_row(session, username, actor.id)


def unfollow(session: Session, actor: User, *, username: str) -> queries.ProfileRow:
    """Stop following a user; unfollowing twice is the same as once.

    :raises ApiError: 404 ``profile``; 403 ``profile`` when unfollowing oneself.
    """
    target = queries.user_by_name(session, username)
    if target.id == actor.id:
        raise ApiError.forbidden("profile", "cannot follow yourself")
    session.execute(delete(follows).where(follows.c.follower_id == actor.id, follows.c.followed_id == target.id))
    return queries.profile_row(session, username, actor.id)
