"""Registration, login, account updates, and the admin's account operations."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service import auth, queries
from service.errors import ApiError
from service.models import User, later_than, new_token_stamp
from service.ops._unset import UNSET, Unset
from service.shared_reads import surrogates


def register(session: Session, *, username: str, email: str, password: str) -> User:
    """Create an account.

    :raises ApiError: 409 ``username``/``email`` if taken, also when two
        registrations race (the unique constraints decide).
    """
    _refuse_taken(session, None, username=username, email=email)
    user = User(username=username, email=email, password_hash=auth.hash_password(password))
    try:
        with session.begin_nested():
            session.add(user)
    except IntegrityError:
        # A concurrent registration won the race: report it as the pre-check would.
        _refuse_taken(session, None, username=username, email=email)
        raise
    return user


def login(session: Session, *, email: str, password: str) -> User:
    """Check credentials and return the account.

    An unknown email and a wrong password take the same time and give the same
    answer, so the endpoint cannot be used to discover accounts.

    :raises ApiError: 401 ``credentials``.
    """
    user = queries.user_by_email(session, email.strip().lower())
    if not auth.check_password(user.password_hash if user else None, password) or user is None:
        raise ApiError.bad_credentials()
    if auth.needs_rehash(user.password_hash):
        user.password_hash = auth.hash_password(password)
    return user


def update_user(
    session: Session,
    actor: User,
    *,
    username: str | Unset = UNSET,
    email: str | Unset = UNSET,
    password: str | Unset = UNSET,
    bio: str | Unset | None = UNSET,
    image: str | Unset | None = UNSET,
    keep_token: str | None = None,
) -> User:
    """Change the fields that were sent; empty ``bio``/``image`` clear them.

    A new password signs out every other session: every token issued before
    stops working except the one whose SHA-256 is ``keep_token`` (the request's
    own, so the client that made the change stays signed in; OWASP ASVS V3.3.3).

    :raises ApiError: 409 ``username``/``email`` if another user holds them.
    """
    unique = {k: v for k, v in (("username", username), ("email", email)) if not isinstance(v, Unset)}
    _refuse_taken(session, actor.id, **unique)
    public_before = (actor.username, actor.bio, actor.image)
    try:
        # Changes are made inside the savepoint: begin_nested() flushes what is
        # already pending *before* the SAVEPOINT, where a violation would abort
        # the whole transaction on PostgreSQL.
        with session.begin_nested():
            for name, value in unique.items():
                setattr(actor, name, value)
            if not isinstance(password, Unset):
                actor.password_hash = auth.hash_password(password)
                # Whoever holds an older token (perhaps a thief) is signed out; the
                # caller keeps its own and gets one with the new stamp in this response.
                actor.token_stamp = new_token_stamp()
                actor.kept_token = keep_token
            if not isinstance(bio, Unset):
                actor.bio = bio or None
            if not isinstance(image, Unset):
                actor.image = image or None
            actor.updated_at = later_than(actor.updated_at)
    except IntegrityError:
        _refuse_taken(session, actor.id, **unique)
        raise
    _record_public_change(session, public_before, actor)
    return actor


def _record_public_change(session: Session, before: tuple[str, str | None, str | None], actor: User) -> None:
    """What a profile edit changes: the profile where it is shown; a new name also renames its lists.

    The email and the password are not shown to anyone else: changing them changes nothing shared.
    """
    old_name = before[0]
    if before == (actor.username, actor.bio, actor.image):
        return
    changed = {surrogates.profile(old_name), surrogates.profile(actor.username)}
    if old_name.lower() != actor.username.lower():
        for name in (old_name, actor.username):
            changed |= {surrogates.authored_by(name), surrogates.favorited_by(name)}
    surrogates.record(session.info, changed)


def revoke_tokens(actor: User) -> None:
    """Sign ``actor`` out everywhere: every token issued so far stops working.

    Only the password and this revoke tokens; a new username, email, bio or
    image does not (tokens name the account by its id, which never changes).
    """
    actor.token_stamp = new_token_stamp()
    actor.kept_token = None


def newest(session: Session, limit: int) -> tuple[Sequence[User], int]:
    """The ``limit`` newest accounts, and how many there are in all."""
    users = session.scalars(select(User).order_by(User.id.desc()).limit(limit)).all()
    return users, session.scalar(select(func.count()).select_from(User)) or 0


def delete_user(session: Session, user: User) -> None:
    """Delete an account with everything it wrote (the foreign keys cascade).

    Every shared answer showing what goes with it is forgotten: the profile,
    its articles (and the lists holding them), its comments, and the counts of
    what it favorited.
    """
    changed = {surrogates.profile(user.username), surrogates.authored_by(user.username)}
    changed.add(surrogates.favorited_by(user.username))
    for article_id, slug in queries.articles_of(session, user.id):
        tags, fans = queries.article_audience(session, article_id)
        changed |= {surrogates.article(slug), surrogates.comments(slug), surrogates.UNFILTERED_LISTS}
        changed |= {surrogates.tagged(tag) for tag in tags} | {surrogates.favorited_by(fan) for fan in fans}
        if tags:
            changed.add(surrogates.TAGS_PAGE)
    changed |= {surrogates.comments(slug) for slug in queries.slugs_commented_by(session, user.id)}
    changed |= {surrogates.article(slug) for slug in queries.slugs_favorited_by(session, user.id)}
    surrogates.record(session.info, changed)
    session.execute(delete(User).where(User.id == user.id))


def _refuse_taken(session: Session, user_id: int | None, **values: str) -> None:
    taken = queries.taken_fields(session, exclude_id=user_id, **values)
    if taken:
        raise ApiError.taken(*taken)
