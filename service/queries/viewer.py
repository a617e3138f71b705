"""The viewer's flags over an answer shared through the cache: one indexed statement."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    JSON,
    ColumnElement,
    Executable,
    String,
    any_,
    bindparam,
    func,
    select,
    type_coerce,
)
from sqlalchemy.orm import InstrumentedAttribute

from service.models import Article, User, favorites, follows
from service.queries.rows import Reads, connection_of


@dataclass(frozen=True, slots=True)
class ViewerFlags:
    """What a signed-in viewer's answer adds to the shared one, read with the viewer's row."""

    token_stamp: str
    kept_token: str | None
    created_at: datetime
    #: By flag (``shared_reads.shown.FLAGS``): the names it is true for, among those asked about
    #: (``favorited``: slugs; ``following``: usernames).
    flags: dict[str, frozenset[str]]


def _one_of(column: InstrumentedAttribute[str], name: str, dialect: str) -> ColumnElement[bool]:
    """SQL for "``column`` is one of the list bound as ``name``", one SQL text whatever the list's length.

    An expanding ``IN`` is rewritten for each execution's count of values
    (SQLAlchemy's post-compile step took a third of this statement's CPU under
    gunicorn, bench/README.md). PostgreSQL takes the list as one array
    (``= ANY``, an index lookup per value); SQLite as one JSON array it walks
    with ``json_each`` (:func:`_list_param` writes it).
    """
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=ARRAY(String)))
    values = func.json_each(bindparam(name, type_=String)).table_valued("value")
    return column.in_(select(values.c.value))


def _list_param(values: list[str], dialect: str) -> list[str] | str:
    """A list bound for :func:`_one_of`: as it is for PostgreSQL, a JSON array for SQLite."""
    return values if dialect == "postgresql" else json.dumps(values)


def _names_json(column: Any, dialect: str) -> ColumnElement[Any]:
    """A JSON array of ``column``'s values (in no particular order)."""
    return func.json_agg(column) if dialect == "postgresql" else func.json_group_array(column)


@functools.cache
def _viewer_flags_statement(dialect: str) -> Executable:
    viewer = User.__table__.alias("viewer")
    favorite_slugs = (
        select(_names_json(Article.slug, dialect))
        .join_from(favorites, Article, Article.id == favorites.c.article_id)
        .where(favorites.c.user_id == viewer.c.id, _one_of(Article.slug, "slugs", dialect))
        .scalar_subquery()
    )
    followed_names = (
        select(_names_json(User.username, dialect))
        .join_from(follows, User, User.id == follows.c.followed_id)
        .where(follows.c.follower_id == viewer.c.id, _one_of(User.username, "names", dialect))
        .scalar_subquery()
    )
    return select(
        viewer.c.token_stamp,
        viewer.c.kept_token,
        viewer.c.created_at,
        type_coerce(favorite_slugs, JSON).label("favorited"),
        type_coerce(followed_names, JSON).label("following"),
    ).where(viewer.c.id == bindparam("viewer"))


def viewer_flags(reads: Reads, viewer_id: int, names: Mapping[str, list[str]]) -> ViewerFlags | None:
    """The viewer's token stamp and, in one statement, which of ``names["favorited"]`` (slugs) they
    favorited and which of ``names["following"]`` (usernames) they follow.

    Indexed lookups over the few slugs and names of one answer (the favorites and
    follows primary keys), so a shared answer from the cache becomes the viewer's.

    :returns: None if there is no such user.
    """
    connection = connection_of(reads)
    dialect = connection.dialect.name
    params = {
        "viewer": viewer_id,
        "slugs": _list_param(names.get("favorited", []), dialect),
        "names": _list_param(names.get("following", []), dialect),
    }
    row = connection.execute(_viewer_flags_statement(dialect), params).one_or_none()
    if row is None:
        return None
    return ViewerFlags(
        row.token_stamp,
        row.kept_token,
        row.created_at,
        {
            "favorited": frozenset(row.favorited if isinstance(row.favorited, list) else ()),
            "following": frozenset(row.following if isinstance(row.following, list) else ()),
        },
    )
