"""Articles: one statement for an article or a page of them (with its total), as the viewer sees them."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    Executable,
    Integer,
    Text,
    and_,
    bindparam,
    exists,
    false,
    func,
    literal_column,
    select,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by
from sqlalchemy.orm import Session

from service.errors import ApiError
from service.models import Article, Comment, Tag, User, article_tags, favorites, follows
from service.queries.rows import ArticleRow, ProfileRow, Reads, connection_of, follows_user


def article_id_by_slug(session: Session, slug: str) -> tuple[int, int]:
    """``(id, author_id)`` of the article, for writes that need no more.

    :raises ApiError: 404 ``article`` if there is no such article.
    """
    row = session.execute(select(Article.id, Article.author_id).where(Article.slug == slug)).one_or_none()
    if row is None:
        raise ApiError.not_found("article")
    return row.id, row.author_id


# -- reads as rows: one statement each ------------------------------------------


def _tag_names(article_id: ColumnElement[int], dialect: str) -> ColumnElement[Any]:
    """The article's tag names as a list: alphabetical on PostgreSQL, sorted after reading on SQLite.

    PostgreSQL aggregates them as a text array, which the driver parses faster than JSON.
    """
    links = article_tags.join(Tag, Tag.id == article_tags.c.tag_id)
    if dialect == "postgresql":
        in_order = func.array_agg(aggregate_order_by(Tag.name, Tag.name))
        of_article = select(in_order.label("names")).select_from(links).where(article_tags.c.article_id == article_id)
        return type_coerce(of_article.scalar_subquery(), ARRAY(Text()))
    # SQLite 3.40 cannot order inside an aggregate; its order (bytes) equals Python's sorted().
    as_json = func.json_group_array(Tag.name)
    of_article = select(as_json.label("names")).select_from(links).where(article_tags.c.article_id == article_id)
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
        follows_user(signed_in).label("following"),
    ]


def _article_row(row: Any, dialect: str) -> ArticleRow:
    """The record of a row of :func:`_article_columns` (a page's rows lead with their total, cut off before)."""
    # By position: a Row's attribute lookups cost more than building the record (bench/README.md).
    slug, title, description, body, tags, created, updated, favorited, count, username, bio, image, following = row
    if not isinstance(tags, list):
        tags = []
    elif dialect != "postgresql":
        tags = sorted(tags)
    author = ProfileRow(username, bio, image, bool(following))
    return ArticleRow(slug, title, description, body, tags, created, updated, bool(favorited), count, author)


@functools.cache
def _single_article_statement(dialect: str, signed_in: bool) -> Executable:
    articles = Article.__table__
    return (
        select(*_article_columns(articles, dialect, signed_in, with_body=True))
        .join_from(articles, User, User.id == articles.c.author_id)
        .where(articles.c.slug == bindparam("slug"))
    )


def article_by_slug(reads: Reads, slug: str, viewer_id: int | None) -> ArticleRow:
    """The article as the viewer sees it, in one statement.

    :raises ApiError: 404 ``article`` if there is no such article.
    """
    connection = connection_of(reads)
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
    """A page of articles and the total of matches, in one statement.

    Unfiltered, the total is the table's own count (an uncorrelated subquery,
    evaluated once), so the page is read through the newest-first index and
    stops at its LIMIT. Filtered, a window count over the matches shares the
    filter with the page, computing it once. The page carries only the columns
    a list shows: a window over whole rows had SQLite copy and sort every
    article's body (36 ms for the first page of 5 000 articles; 0.4 ms now,
    bench/README.md).
    """
    newest_first = (Article.created_at.desc(), Article.id.desc())
    if filters:
        total: ColumnElement[int] = func.count().over()
    else:
        total = select(func.count()).select_from(Article).scalar_subquery()
    page = (
        select(
            Article.id,
            Article.slug,
            Article.title,
            Article.description,
            Article.author_id,
            Article.created_at,
            Article.updated_at,
            total.label("total"),
        )
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
    reads: Reads, viewer_id: int | None, filters: dict[str, Any], limit: int, offset: int
) -> tuple[list[ArticleRow], int]:
    connection = connection_of(reads)
    dialect = connection.dialect.name
    stmt = _page_statement(dialect, frozenset(filters), viewer_id is not None)
    rows = connection.execute(stmt, {**filters, "viewer": viewer_id, "limit": limit, "offset": offset}).all()
    if rows:
        return [_article_row(row[1:], dialect) for row in rows], rows[0][0]
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
    reads: Reads,
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
    return _articles_page(reads, viewer_id, filters, limit, offset)


def feed_page(reads: Reads, viewer_id: int, *, limit: int = 20, offset: int = 0) -> tuple[list[ArticleRow], int]:
    """A page of articles by authors the viewer follows, newest first, and the total, in one statement."""
    return _articles_page(reads, viewer_id, {"feed": True}, limit, offset)


# -- what a write changes, for the response cache ---------------------------------


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
