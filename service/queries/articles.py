"""Articles: one statement for an article or a page of them (with its total), as the viewer sees them."""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ColumnElement,
    Executable,
    Integer,
    Select,
    Text,
    and_,
    bindparam,
    exists,
    false,
    func,
    literal_column,
    select,
    true,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by

from service.errors import ApiError
from service.models import ARTICLES_TOTAL, Article, Tag, User, article_tags, favorites, follows, totals
from service.queries.rows import ArticleRow, ProfileRow, Reads, connection_of, follows_user

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
        source.c.favorites_count,
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


def _user_id(name: str) -> ColumnElement[Any]:
    """The id of the user named by the bound value ``name`` (in any case), or NULL."""
    return select(User.id).where(User.username_lower == bindparam(name)).scalar_subquery()


def _matching(filters: frozenset[str]) -> ColumnElement[bool]:
    """The articles matching every filter, written so that the smallest set can drive.

    A user's favorites (usually few) as a list to look articles up by; an
    author as an equality on the (author, date) index; a tag as a probe of
    each candidate's links: a page of ``?tag=a&author=b`` reads the author's
    articles, not the tag's tens of thousands.
    """
    conditions: list[ColumnElement[bool]] = []
    if "favorited" in filters:
        liked = select(favorites.c.article_id).where(favorites.c.user_id == _user_id("favorited"))
        conditions.append(Article.id.in_(liked))
    if "author" in filters:
        conditions.append(Article.author_id == _user_id("author"))
    if "tag" in filters:
        tag_id = select(Tag.id).where(Tag.name == bindparam("tag")).scalar_subquery()
        conditions.append(exists().where(article_tags.c.article_id == Article.id, article_tags.c.tag_id == tag_id))
    if "feed" in filters:
        followed = select(follows.c.followed_id).where(follows.c.follower_id == bindparam("viewer"))
        conditions.append(Article.author_id.in_(followed))
    return and_(True, *conditions)


def _page_ids(dialect: str, filters: frozenset[str]) -> Select[Any, Any]:
    """``(id, created_at)`` of the page's articles, newest first, read from an index that has that order.

    A tag's page comes from ``article_tags``' own (tag, date) index; the feed, on
    PostgreSQL, from each followed author's (author, date) index, as many as
    the page needs from each; the rest from the articles' indexes. Skipping
    ``offset`` rows walks index entries only.
    """
    if filters == {"tag"}:
        tag_id = select(Tag.id).where(Tag.name == bindparam("tag")).scalar_subquery()
        ids = select(article_tags.c.article_id.label("id"), article_tags.c.created_at)
        ids = ids.where(article_tags.c.tag_id == tag_id)
        return ids.order_by(article_tags.c.created_at.desc(), article_tags.c.article_id.desc())
    if filters == {"feed"} and dialect == "postgresql":
        newest_of_author = (
            select(Article.id, Article.created_at)
            .where(Article.author_id == follows.c.followed_id)
            .order_by(Article.created_at.desc(), Article.id.desc())
            # limit + offset, added in Python: in SQL two 32-bit parameters overflow past 2**31 (issue 34).
            .limit(bindparam("reach", type_=BigInteger))
            .lateral("newest")
        )
        ids = select(newest_of_author.c.id, newest_of_author.c.created_at).select_from(follows)
        ids = ids.join(newest_of_author, true()).where(follows.c.follower_id == bindparam("viewer"))
        return ids.order_by(newest_of_author.c.created_at.desc(), newest_of_author.c.id.desc())
    ids = select(Article.id, Article.created_at).where(_matching(filters))
    return ids.order_by(Article.created_at.desc(), Article.id.desc())


def _total(filters: frozenset[str]) -> ColumnElement[int]:
    """The number of matches: a kept total (``models.totals``) for one filter, else counted."""
    if not filters:
        kept = select(totals.c.value).where(totals.c.name == ARTICLES_TOTAL)
    elif filters == {"tag"}:
        kept = select(Tag.articles_count).where(Tag.name == bindparam("tag"))
    elif filters == {"author"}:
        kept = select(User.articles_count).where(User.username_lower == bindparam("author"))
    elif filters == {"favorited"}:
        kept = select(User.favorites_count).where(User.username_lower == bindparam("favorited"))
    elif filters == {"feed"}:
        kept = select(func.sum(User.articles_count)).join_from(follows, User, User.id == follows.c.followed_id)
        kept = kept.where(follows.c.follower_id == bindparam("viewer"))
    else:  # two filters at once: their intersection, counted through the more selective one's index
        kept = select(func.count()).select_from(Article).where(_matching(filters))
    return func.coalesce(kept.scalar_subquery(), 0)


@functools.cache
def _page_statement(dialect: str, filters: frozenset[str], signed_in: bool) -> Executable:
    """A page of articles and the total of matches, in one statement.

    The page's ids come from an index in the page's order (:func:`_page_ids`)
    and stop at its LIMIT; the total is a kept one (:func:`_total`), an
    uncorrelated subquery evaluated once. Neither grows with the table: no
    window count, which had PostgreSQL read every match of a tag before the
    LIMIT (seconds at a million articles, bench/README.md). On PostgreSQL each
    page row's article and author are read by a LATERAL subquery: a generic
    plan cannot know the LIMIT (it assumes a tenth of the table) and chose
    hash joins over every article and user; a LATERAL is looked up per row
    whatever the estimate. The page carries only the columns a list shows.
    """
    page = _page_ids(dialect, filters).limit(bindparam("limit")).offset(bindparam("offset")).subquery("page")
    articles = Article.__table__
    columns = _article_columns(articles, dialect, signed_in, with_body=False)
    order = (page.c.created_at.desc(), page.c.id.desc())
    if dialect == "postgresql":
        one = (
            select(*columns)
            .join_from(articles, User, User.id == articles.c.author_id)
            .where(articles.c.id == page.c.id)
            .limit(1)  # one row per id anyway; a LIMIT keeps PostgreSQL from flattening it into a join
            .lateral("one")
        )
        return select(_total(filters).label("total"), *one.c).select_from(page).join(one, true()).order_by(*order)
    return (
        select(_total(filters).label("total"), *columns)
        .select_from(page)
        .join(articles, articles.c.id == page.c.id)
        .join(User, User.id == articles.c.author_id)
        .order_by(*order)
    )


@functools.cache
def _total_statement(filters: frozenset[str]) -> Executable:
    return select(_total(filters))


def _articles_page(
    reads: Reads, viewer_id: int | None, filters: dict[str, Any], limit: int, offset: int
) -> tuple[list[ArticleRow], int]:
    connection = connection_of(reads)
    dialect = connection.dialect.name
    stmt = _page_statement(dialect, frozenset(filters), viewer_id is not None)
    rows = connection.execute(
        stmt, {**filters, "viewer": viewer_id, "limit": limit, "offset": offset, "reach": limit + offset}
    ).all()
    if rows:
        return [_article_row(row[1:], dialect) for row in rows], rows[0][0]
    if offset == 0:
        return [], 0
    # Past the last page the total has no row to ride on: read alone (a second statement, only here).
    total = connection.execute(_total_statement(frozenset(filters)), {**filters, "viewer": viewer_id}).scalar_one()
    return [], int(total)


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
