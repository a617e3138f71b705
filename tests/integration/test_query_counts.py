"""No N+1: a page costs the same number of statements whatever its length."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker
from webtest import TestApp

from tests.factories import auth_header, favorite, follow, make_article, make_comment, make_user


@contextmanager
def counting(session_factory: sessionmaker[Session]) -> Iterator[list[str]]:
    """Collect the SQL statements sent through the app's bind while inside."""
    bind = session_factory.kw["bind"]
    seen: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
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


def test_list_feed_and_article_cost_a_constant_number_of_statements(
    client: TestApp, db: Session, session_factory: sessionmaker[Session], record_property: object
) -> None:
    reader, article = populate(db, 2)
    headers = auth_header(reader)  # type: ignore[arg-type]
    small = {
        url: statements(client, session_factory, url, headers)
        for url in (
            "/api/articles",
            "/api/articles/feed",
            f"/api/articles/{article.slug}",  # type: ignore[attr-defined]
            f"/api/articles/{article.slug}/comments",
        )
    }  # type: ignore[attr-defined]

    populate_more(db, 28)
    large = {url: statements(client, session_factory, url, headers) for url in small}

    assert large == small
    # user (auth) + count + page + authors + tags; single: user + article + author + tags.
    assert small["/api/articles"] == 5
    assert small["/api/articles/feed"] == 5
    assert small[f"/api/articles/{article.slug}"] == 4  # type: ignore[attr-defined]
    record_property("statements", small)  # type: ignore[operator]


def populate_more(db: Session, articles: int) -> None:
    authors = [make_user(db, f"more{i}") for i in range(3)]
    for n in range(articles):
        make_article(db, authors[n % 3], tags=[f"m{n % 4}"])


def test_anonymous_list_skips_the_user_lookup(
    client: TestApp, db: Session, session_factory: sessionmaker[Session]
) -> None:
    populate(db, 20)

    assert statements(client, session_factory, "/api/articles", {}) == 4
