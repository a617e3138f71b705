"""Read-side queries and get-or-404 helpers shared by the ops.

Every read a client can make is ONE SQL statement that returns plain rows: the
page of articles together with its total (a window count), each article's
author, tags (aggregated as a JSON array) and favorites count, and the viewer's
``favorited``/``following`` flags. The rows become small frozen records
(:class:`ArticleRow`, :class:`ProfileRow`, :class:`CommentRow`) that the reply
schemas (generated from the ORM models) dump like model objects; no ORM object
is built and nothing enters an identity map. Statements are built once per
shape (dialect, filters, signed in or not) and cached, so a request only binds
values. Writes keep using the ORM.
Imports models and errors only; knows nothing about HTTP requests.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    Connection,
    Executable,
    Integer,
    and_,
    bindparam,
    exists,
    false,
    func,
    literal_column,
    select,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Session, with_expression

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


def article_id_by_slug(session: Session, slug: str) -> tuple[int, int]:
    """``(id, author_id)`` of the article, for writes that need no more.

    :raises ApiError: 404 ``article`` if there is no such article.
    """
    row = session.execute(select(Article.id, Article.author_id).where(Article.slug == slug)).one_or_none()
    if row is None:
        raise ApiError.not_found("article")
    return row.id, row.author_id


# -- reads as rows: one statement each ------------------------------------------


@dataclass(frozen=True, slots=True)
class ProfileRow:
    """A profile as a viewer sees it (the wire's ``Profile``)."""

    username: str
    bio: str | None
    image: str | None
    following: bool


@dataclass(frozen=True, slots=True)
class ArticleRow:
    """An article as a viewer sees it (the wire's ``Article``); ``body`` is None in lists."""

    slug: str
    title: str
    description: str
    body: str | None
    tag_list: list[str]
    created_at: datetime
    updated_at: datetime
    favorited: bool
    favorites_count: int
    author: ProfileRow


@dataclass(frozen=True, slots=True)
class CommentRow:
    """A comment as a viewer sees it (the wire's ``Comment``)."""

    id: int
    created_at: datetime
    updated_at: datetime
    body: str
    author: ProfileRow


def _follows_user(signed_in: bool) -> ColumnElement[bool]:
    """SQL for "the viewer (bound as ``viewer``) follows ``User``"; false when nobody is signed in."""
    if not signed_in:
        return false()
    return exists().where(follows.c.follower_id == bindparam("viewer", type_=Integer), follows.c.followed_id == User.id)


def _tag_names(article_id: ColumnElement[int], dialect: str) -> ColumnElement[Any]:
    """The article's tag names as a JSON array (alphabetical on PostgreSQL; sorted after reading on SQLite)."""
    links = article_tags.join(Tag, Tag.id == article_tags.c.tag_id)
    if dialect == "postgresql":
        names: ColumnElement[Any] = func.json_agg(aggregate_order_by(Tag.name, Tag.name))
        names = func.coalesce(names, literal_column("'[]'::json"))
    else:
        # SQLite 3.40 cannot order inside an aggregate; its order (bytes) equals Python's sorted().
        names = func.json_group_array(Tag.name)
    of_article = select(names.label("names")).select_from(links).where(article_tags.c.article_id == article_id)
    return type_coerce(of_article.scalar_subquery(), JSON)


def _article_columns(source: Any, dialect: str, signed_in: bool, with_body: bool) -> list[Any]:
    """The columns of an :class:`ArticleRow`, from ``source`` (the articles table or a page of it) and ``users``."""
    viewer = bindparam("viewer", type_=Integer)
    favorited = (
        exists().where(favorites.c.user_id == viewer, favorites.c.article_id == source.c.id) if signed_in else false()
    )
    count = select(func.count()).where(favorites.c.article_id == source.c.id).scalar_subquery()
    body = source.c.body if with_body else literal_column("NULL")
    return [
        source.c.slug,
        source.c.title,
        source.c.description,
        body.label("body"),
        _tag_names(source.c.id, dialect).label("tags"),
        source.c.created_at,
        source.c.updated_at,
        favorited.label("favorited"),
        count.label("favorites_count"),
        User.username,
        User.bio,
        User.image,
        _follows_user(signed_in).label("following"),
    ]


def _article_row(row: Any, dialect: str) -> ArticleRow:
    tags = row.tags if isinstance(row.tags, list) else []
    return ArticleRow(
        slug=row.slug,
        title=row.title,
        description=row.description,
        body=row.body,
        tag_list=tags if dialect == "postgresql" else sorted(tags),
        created_at=row.created_at,
        updated_at=row.updated_at,
        favorited=bool(row.favorited),
        favorites_count=row.favorites_count,
        author=ProfileRow(row.username, row.bio, row.image, bool(row.following)),
    )


@functools.cache
def _single_article_statement(dialect: str, signed_in: bool) -> Executable:
    articles = Article.__table__
    return (
        select(*_article_columns(articles, dialect, signed_in, with_body=True))
        .join_from(articles, User, User.id == articles.c.author_id)
        .where(articles.c.slug == bindparam("slug"))
    )


def article_by_slug(session: Session, slug: str, viewer_id: int | None) -> ArticleRow:
    """The article as the viewer sees it, in one statement.

    :raises ApiError: 404 ``article`` if there is no such article.
    """
    connection = _connection(session)
    dialect = connection.dialect.name
    stmt = _single_article_statement(dialect, viewer_id is not None)
    row = connection.execute(stmt, {"slug": slug, "viewer": viewer_id}).one_or_none()
    if row is None:
        raise ApiError.not_found("article")
    return _article_row(row, dialect)


#: The filters a page of articles may have, each matched against a bound value of the same name.
_FILTERS = ("tag", "author", "favorited", "feed")


def _filter(name: str) -> ColumnElement[bool]:
    if name == "tag":
        tagged = select(article_tags.c.article_id).join(Tag, Tag.id == article_tags.c.tag_id)
        return Article.id.in_(tagged.where(Tag.name == bindparam("tag")))
    if name == "author":
        return Article.author_id.in_(select(User.id).where(User.username_lower == bindparam("author")))
    if name == "favorited":
        fans = select(favorites.c.article_id).join(User, User.id == favorites.c.user_id)
        return Article.id.in_(fans.where(User.username_lower == bindparam("favorited")))
    followed = select(follows.c.followed_id).where(follows.c.follower_id == bindparam("viewer"))
    return Article.author_id.in_(followed)


@functools.cache
def _page_statement(dialect: str, filters: frozenset[str], signed_in: bool) -> Executable:
    """A page of articles and the total of matches (a window count over the filtered articles)."""
    newest_first = (Article.created_at.desc(), Article.id.desc())
    page = (
        select(*Article.__table__.c, func.count().over().label("total"))
        .where(and_(True, *(_filter(name) for name in _FILTERS if name in filters)))
        .order_by(*newest_first)
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
        .subquery("page")
    )
    return (
        select(page.c.total, *_article_columns(page, dialect, signed_in, with_body=False))
        .join_from(page, User, User.id == page.c.author_id)
        .order_by(page.c.created_at.desc(), page.c.id.desc())
    )


def _articles_page(
    session: Session, viewer_id: int | None, filters: dict[str, Any], limit: int, offset: int
) -> tuple[list[ArticleRow], int]:
    connection = _connection(session)
    dialect = connection.dialect.name
    stmt = _page_statement(dialect, frozenset(filters), viewer_id is not None)
    rows = connection.execute(stmt, {**filters, "viewer": viewer_id, "limit": limit, "offset": offset}).all()
    if rows:
        return [_article_row(row, dialect) for row in rows], rows[0].total
    if offset == 0:
        return [], 0
    # Past the last page the window count has no row to ride on: count alone (a second statement, only here).
    matching = (
        select(func.count())
        .select_from(Article)
        .where(and_(True, *(_filter(name) for name in _FILTERS if name in filters)))
    )
    return [], connection.execute(matching, {**filters, "viewer": viewer_id}).scalar_one()


def articles_page(
    session: Session,
    viewer_id: int | None,
    *,
    tag: str | None = None,
    author: str | None = None,
    favorited: str | None = None,
    limit: int = 20,
    offset: int = 0,
) -> tuple[list[ArticleRow], int]:
    """A page of articles matching every given filter, newest first, and the total, in one statement.

    :param tag: tag name; :param author: author's username (any case);
    :param favorited: username (any case) of a user who favorited the article.
    """
    filters: dict[str, Any] = {}
    if tag is not None:
        filters["tag"] = tag
    if author is not None:
        filters["author"] = author.lower()
    if favorited is not None:
        filters["favorited"] = favorited.lower()
    return _articles_page(session, viewer_id, filters, limit, offset)


def feed_page(session: Session, viewer_id: int, *, limit: int = 20, offset: int = 0) -> tuple[list[ArticleRow], int]:
    """A page of articles by authors the viewer follows, newest first, and the total, in one statement."""
    return _articles_page(session, viewer_id, {"feed": True}, limit, offset)


def _comment_columns(signed_in: bool) -> list[Any]:
    return [
        Comment.id,
        Comment.created_at,
        Comment.updated_at,
        Comment.body,
        User.username,
        User.bio,
        User.image,
        _follows_user(signed_in).label("following"),
    ]


def _comment_row(row: Any) -> CommentRow:
    author = ProfileRow(row.username, row.bio, row.image, bool(row.following))
    return CommentRow(row.id, row.created_at, row.updated_at, row.body, author)


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


def comments_by_slug(session: Session, slug: str, viewer_id: int | None) -> list[CommentRow]:
    """The article's comments, newest first, with authors as the viewer sees them, in one statement.

    :raises ApiError: 404 ``article`` if there is no such article.
    """
    rows = (
        _connection(session)
        .execute(_comments_statement(viewer_id is not None), {"slug": slug, "viewer": viewer_id})
        .all()
    )
    if not rows:
        raise ApiError.not_found("article")
    return [_comment_row(row) for row in rows if row.id is not None]


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
    row = _connection(session).execute(stmt, {"comment_id": comment_id, "viewer": viewer_id}).one_or_none()
    if row is None:
        raise ApiError.not_found("comment")
    return _comment_row(row)


@functools.cache
def _profile_statement(signed_in: bool) -> Executable:
    return select(User.username, User.bio, User.image, _follows_user(signed_in).label("following")).where(
        User.username_lower == bindparam("name")
    )


def profile_row(session: Session, username: str, viewer_id: int | None) -> ProfileRow:
    """The profile as the viewer sees it, in one statement; ``JAKE`` finds ``jake``.

    :raises ApiError: 404 ``profile`` if there is no such user.
    """
    stmt = _profile_statement(viewer_id is not None)
    row = _connection(session).execute(stmt, {"name": username.lower(), "viewer": viewer_id}).one_or_none()
    if row is None:
        raise ApiError.not_found("profile")
    return ProfileRow(row.username, row.bio, row.image, bool(row.following))


def comment_by_id(session: Session, comment_id: int) -> Comment:
    """One comment, for a write that checks whose and where it is.

    :raises ApiError: 404 ``comment`` if there is no such comment.
    """
    comment = session.get(Comment, comment_id)
    if comment is None:
        raise ApiError.not_found("comment")
    return comment


@dataclass(frozen=True, slots=True)
class ViewerFlags:
    """What a signed-in viewer's answer adds to the shared one, read with the viewer's row."""

    token_stamp: str
    created_at: datetime
    favorited: frozenset[str]  # slugs, among those asked about
    following: frozenset[str]  # usernames, among those asked about


def _names_json(column: Any, dialect: str) -> ColumnElement[Any]:
    """A JSON array of ``column``'s values (in no particular order)."""
    return func.json_agg(column) if dialect == "postgresql" else func.json_group_array(column)


@functools.cache
def _viewer_flags_statement(dialect: str) -> Executable:
    viewer = User.__table__.alias("viewer")
    favorite_slugs = (
        select(_names_json(Article.slug, dialect))
        .join_from(favorites, Article, Article.id == favorites.c.article_id)
        .where(favorites.c.user_id == viewer.c.id, Article.slug.in_(bindparam("slugs", expanding=True)))
        .scalar_subquery()
    )
    followed_names = (
        select(_names_json(User.username, dialect))
        .join_from(follows, User, User.id == follows.c.followed_id)
        .where(follows.c.follower_id == viewer.c.id, User.username.in_(bindparam("names", expanding=True)))
        .scalar_subquery()
    )
    return select(
        viewer.c.token_stamp,
        viewer.c.created_at,
        type_coerce(favorite_slugs, JSON).label("favorited"),
        type_coerce(followed_names, JSON).label("following"),
    ).where(viewer.c.id == bindparam("viewer"))


def viewer_flags(session: Session, viewer_id: int, slugs: list[str], usernames: list[str]) -> ViewerFlags | None:
    """The viewer's token stamp and which of ``slugs`` they favorited and ``usernames`` they follow, in one statement.

    Indexed lookups over the few slugs and names of one answer (the favorites and
    follows primary keys), so a shared answer from the cache becomes the viewer's.

    :returns: None if there is no such user.
    """
    connection = _connection(session)
    params = {"viewer": viewer_id, "slugs": slugs, "names": usernames}
    row = connection.execute(_viewer_flags_statement(connection.dialect.name), params).one_or_none()
    if row is None:
        return None
    return ViewerFlags(
        row.token_stamp,
        row.created_at,
        frozenset(row.favorited if isinstance(row.favorited, list) else ()),
        frozenset(row.following if isinstance(row.following, list) else ()),
    )


@functools.cache
def _tags_statement() -> Executable:
    in_use = exists().where(article_tags.c.tag_id == Tag.id)
    return select(Tag.name).where(in_use).order_by(Tag.name)


def tag_names(session: Session) -> list[str]:
    """Every tag carried by at least one article, alphabetical, in one statement."""
    return list(_connection(session).scalars(_tags_statement()))


def _connection(session: Session) -> Connection:
    """The session's connection, for the read statements: rows, not ORM objects.

    Executed as Core statements, a read skips the ORM's execution machinery
    (identity map, loading, execution events), which cost more than the
    statement itself (bench/README.md). Pending ORM changes are flushed first,
    so a write reads its own work, as the ORM's autoflush would have.
    """
    if session.new or session.dirty or session.deleted:
        session.flush()
    return session.connection()
