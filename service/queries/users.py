"""Users and profiles: lookups for authentication and uniqueness, and the profile as a viewer sees it."""

from __future__ import annotations

import functools

from sqlalchemy import (
    ColumnElement,
    Executable,
    bindparam,
    select,
)
from sqlalchemy.orm import Session

from service.errors import ApiError
from service.models import User
from service.queries.rows import ProfileRow, Reads, connection_of, follows_user


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


def user_by_name(session: Session, username: str) -> User:
    """The account named ``username``, in any case (``JAKE`` finds ``jake``).

    :raises ApiError: 404 ``profile`` if there is no such user.
    """
    user = session.scalars(select(User).where(named(username))).one_or_none()
    if user is None:
        raise ApiError.not_found("profile")
    return user


@functools.cache
def _profile_statement(signed_in: bool) -> Executable:
    return select(User.username, User.bio, User.image, follows_user(signed_in).label("following")).where(
        User.username_lower == bindparam("name")
    )


def profile_row(reads: Reads, username: str, viewer_id: int | None) -> ProfileRow:
    """The profile as the viewer sees it, in one statement; ``JAKE`` finds ``jake``.

    :raises ApiError: 404 ``profile`` if there is no such user.
    """
    stmt = _profile_statement(viewer_id is not None)
    row = connection_of(reads).execute(stmt, {"name": username.lower(), "viewer": viewer_id}).one_or_none()
    if row is None:
        raise ApiError.not_found("profile")
    name, bio, image, following = row
    return ProfileRow(name, bio, image, bool(following))
