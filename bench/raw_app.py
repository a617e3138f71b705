"""The physical limit for bench/reads.py: a bare WSGI app, one raw psycopg query per read.

It answers the read endpoints the benchmark drives with the same JSON shapes
as the service, each from ONE SQL statement (authors, tags, counts and the
total aggregated in SQL) on one autocommit connection per worker, with
psycopg's automatic prepared statements. No routing library, no ORM, no
schemas: whatever the service costs beyond this is the price of its layers.

Run: gunicorn -w 2 --chdir bench raw_app:application  (RAW_DATABASE_URL=postgresql://...)
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import jwt
import psycopg

_ARTICLE_COLUMNS = """
    a.slug, a.title, a.description, {body} a.created_at, a.updated_at,
    COALESCE((SELECT array_agg(t.name ORDER BY t.name) FROM article_tags x JOIN tags t ON t.id = x.tag_id
              WHERE x.article_id = a.id), '{{}}') AS tags,
    (SELECT count(*) FROM favorites f WHERE f.article_id = a.id) AS favorites,
    {favorited} AS favorited,
    u.username, u.bio, u.image, {following} AS following
"""
_ANONYMOUS = {"favorited": "false", "following": "false"}
_VIEWER = {
    "favorited": "EXISTS (SELECT 1 FROM favorites f WHERE f.article_id = a.id AND f.user_id = %(viewer)s)",
    "following": "true",
}
ARTICLE = (
    f"SELECT {_ARTICLE_COLUMNS.format(body='a.body,', **_ANONYMOUS)}"
    " FROM articles a JOIN users u ON u.id = a.author_id WHERE a.slug = %(slug)s"
)
#: A page: the matching articles numbered and counted (article columns only), cut to the page, and only
#: then joined with authors and aggregated with tags and favorites, so the per-row work is done 20 times.
_PAGE = (
    "WITH page AS (SELECT a.*, count(*) OVER () AS total FROM articles a WHERE {where}"
    " ORDER BY a.created_at DESC, a.id DESC LIMIT %(limit)s OFFSET %(offset)s)"
    " SELECT a.total, {columns} FROM page a JOIN users u ON u.id = a.author_id ORDER BY a.created_at DESC, a.id DESC"
)
LIST = _PAGE.format(where="true", columns=_ARTICLE_COLUMNS.format(body="", **_ANONYMOUS))
BY_TAG = _PAGE.format(
    where="a.id IN (SELECT x.article_id FROM article_tags x JOIN tags t ON t.id = x.tag_id WHERE t.name = %(tag)s)",
    columns=_ARTICLE_COLUMNS.format(body="", **_ANONYMOUS),
)
FEED = _PAGE.format(
    where="a.author_id IN (SELECT followed_id FROM follows WHERE follower_id = %(viewer)s)",
    columns=_ARTICLE_COLUMNS.format(body="", **_VIEWER),
)
TAGS = "SELECT name FROM tags t WHERE EXISTS (SELECT 1 FROM article_tags x WHERE x.tag_id = t.id) ORDER BY name"
PROFILE = "SELECT username, bio, image FROM users WHERE username_lower = lower(%(username)s)"
COMMENTS = (
    "SELECT c.id, c.created_at, c.updated_at, c.body, u.username, u.bio, u.image FROM comments c"
    " JOIN articles a ON a.id = c.article_id JOIN users u ON u.id = c.author_id"
    " WHERE a.slug = %(slug)s ORDER BY c.created_at DESC, c.id DESC"
)

_connection: psycopg.Connection[Any] | None = None


def _rows(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    global _connection  # one connection per worker, opened after gunicorn forked
    if _connection is None or _connection.closed:
        _connection = psycopg.connect(os.environ["RAW_DATABASE_URL"], autocommit=True)
    return _connection.execute(sql, params).fetchall()  # type: ignore[arg-type]


def _when(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _article(row: tuple[Any, ...], with_body: bool) -> dict[str, Any]:
    slug, title, description, *rest = row
    body = rest.pop(0) if with_body else None
    created, updated, tags, favorites, favorited, username, bio, image, following = rest
    article = {"slug": slug, "title": title, "description": description}
    if with_body:
        article["body"] = body
    article.update(
        tagList=tags,
        createdAt=_when(created),
        updatedAt=_when(updated),
        favorited=favorited,
        favoritesCount=favorites,
        author={"username": username, "bio": bio, "image": image, "following": following},
    )
    return article


def _page(sql: str, params: dict[str, Any]) -> dict[str, Any]:
    rows = _rows(sql, params)
    return {
        "articles": [_article(row[1:], with_body=False) for row in rows],
        "articlesCount": rows[0][0] if rows else 0,
    }


def _viewer(environ: dict[str, Any]) -> int:
    token = environ.get("HTTP_AUTHORIZATION", "").partition(" ")[2]
    return int(jwt.decode(token, os.environ["RAW_SECRET_KEY"], algorithms=["HS256"])["sub"])


def _route(environ: dict[str, Any]) -> tuple[int, Any]:
    path = environ["PATH_INFO"].rstrip("/")
    query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    page = {"limit": int(query.get("limit", 20)), "offset": int(query.get("offset", 0))}
    if path == "/api/tags":
        return 200, {"tags": [name for (name,) in _rows(TAGS, {})]}
    if path == "/api/articles":
        if "tag" in query:
            return 200, _page(BY_TAG, {**page, "tag": query["tag"]})
        return 200, _page(LIST, page)
    if path == "/api/articles/feed":
        return 200, _page(FEED, {**page, "viewer": _viewer(environ)})
    if match := re.fullmatch(r"/api/articles/([^/]+)/comments", path):
        comments = [
            {
                "id": id_,
                "createdAt": _when(created),
                "updatedAt": _when(updated),
                "body": body,
                "author": {"username": username, "bio": bio, "image": image, "following": False},
            }
            for id_, created, updated, body, username, bio, image in _rows(COMMENTS, {"slug": match[1]})
        ]
        return 200, {"comments": comments}
    if match := re.fullmatch(r"/api/articles/([^/]+)", path):
        rows = _rows(ARTICLE, {"slug": match[1]})
        return (
            (200, {"article": _article(rows[0], with_body=True)})
            if rows
            else (404, {"errors": {"article": ["not found"]}})
        )
    if match := re.fullmatch(r"/api/profiles/([^/]+)", path):
        rows = _rows(PROFILE, {"username": match[1]})
        if not rows:
            return 404, {"errors": {"profile": ["not found"]}}
        username, bio, image = rows[0]
        return 200, {"profile": {"username": username, "bio": bio, "image": image, "following": False}}
    return 404, {"errors": {"resource": ["not found"]}}


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    status, data = _route(environ)
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    start_response(
        f"{status} {'OK' if status == 200 else 'Not Found'}",
        [("Content-Type", "application/json; charset=utf-8"), ("Content-Length", str(len(body)))],
    )
    return [body]
