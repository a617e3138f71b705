"""One statement per read: a page costs the same whatever its length, and a token adds only the user's row."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker
from webtest import TestApp

from tests.factories import auth_header, favorite, follow, make_article, make_comment, make_user

#: Transaction control is not a statement that reads anything (and the PostgreSQL tests add savepoints).
_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


@contextmanager
def counting(session_factory: sessionmaker[Session]) -> Iterator[list[str]]:
    """Collect the SQL statements sent through the app's bind while inside."""
    bind = session_factory.kw["bind"]
    seen: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        if not statement.lstrip().upper().startswith(_CONTROL):
            seen.append(statement)

    event.listen(bind, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(bind, "before_cursor_execute", record)


def populate(db: Session, articles: int) -> tuple[object, object]:
    reader = make_user(db, "reader")
    authors = [make_user(db, f"author{i}") for i in range(3)]
    follow(db, reader, authors[0])
    follow(db, reader, authors[1])
    for n in range(articles):
        article = make_article(db, authors[n % 3], tags=[f"t{n % 4}", f"u{n % 5}"])
        if n % 2:
            favorite(db, reader, article)
        make_comment(db, article, authors[(n + 1) % 3])
    return reader, article


def statements(client: TestApp, session_factory: sessionmaker[Session], url: str, headers: dict) -> int:
    with counting(session_factory) as seen:
        client.get(url, headers=headers)
    return len(seen)


def reads(slug: str) -> list[str]:
    return [
        "/api/articles?limit=100",
        "/api/articles?tag=t1&limit=100",
        "/api/articles?author=author1&limit=100",
        "/api/articles?favorited=reader&limit=100",
        f"/api/articles/{slug}",
        f"/api/articles/{slug}/comments",
        "/api/profiles/author1",
        "/api/tags",
    ]


@pytest.mark.parametrize("articles", [2, 100])
def test_every_anonymous_read_is_one_statement(
    client: TestApp, db: Session, session_factory: sessionmaker[Session], articles: int
) -> None:
    _, article = populate(db, articles)

    counts = {url: statements(client, session_factory, url, {}) for url in reads(article.slug)}  # type: ignore[attr-defined]

    assert counts == dict.fromkeys(counts, 1)


@pytest.mark.parametrize("articles", [2, 100])
def test_a_signed_in_read_adds_only_the_users_row(
    client: TestApp, db: Session, session_factory: sessionmaker[Session], articles: int
) -> None:
    reader, article = populate(db, articles)
    urls = [*reads(article.slug), "/api/articles/feed?limit=100"]  # type: ignore[attr-defined]

    counts = {url: statements(client, session_factory, url, auth_header(reader)) for url in urls}  # type: ignore[arg-type]

    assert counts == dict.fromkeys(counts, 2) | {"/api/tags": 1}  # tags ignore the token


def test_a_page_past_the_end_still_reports_the_total(client: TestApp, db: Session) -> None:
    populate(db, 3)

    past = client.get("/api/articles?offset=50").json

    assert past == {"articles": [], "articlesCount": 3}
