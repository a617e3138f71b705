"""Every list filter and the newest-first ordering can be served by an index (PostgreSQL, and SQLite's first page)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from service import db as service_db
from service import queries

#: A realistic spread: 5 000 articles, 100 tags, 50 users, a few favorites each.
_POPULATE = """
INSERT INTO users (username, username_lower, email, password_hash, token_stamp, created_at, updated_at)
  SELECT 'u' || g, 'u' || g, 'u' || g || '@x.org', 'h', '0123456789abcdef', now(), now() FROM generate_series(1, 50) g;
INSERT INTO tags (name) SELECT 't' || g FROM generate_series(1, 100) g;
INSERT INTO articles (slug, title, description, body, author_id, created_at, updated_at)
  SELECT 's' || g, 'T', 'D', 'B', (SELECT id FROM users WHERE username = 'u' || (g %% 50 + 1)),
         now() - g * interval '1 minute', now() FROM generate_series(1, 5000) g;
INSERT INTO article_tags (article_id, tag_id)
  SELECT a.id, t.id FROM articles a JOIN tags t ON t.name = 't' || (a.id %% 100 + 1);
INSERT INTO favorites (user_id, article_id)
  SELECT u.id, a.id FROM users u JOIN articles a ON a.id %% 50 = u.id %% 50 AND a.id %% 7 = 0;
ANALYZE;
"""


def _page_query_plan(db: Session, filters: dict[str, str]) -> str:
    """EXPLAIN of the statement that fetches the page (the one with LIMIT)."""
    connection = db.connection()
    captured: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if "LIMIT" in statement:
            captured.append((statement, parameters))

    event.listen(connection, "before_cursor_execute", capture)
    try:
        queries.articles_page(db, None, limit=20, offset=0, **filters)
    finally:
        event.remove(connection, "before_cursor_execute", capture)
    statement, parameters = captured[0]
    if connection.dialect.name == "sqlite":
        return "\n".join(row[3] for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters))
    return "\n".join(connection.exec_driver_sql("EXPLAIN " + statement, parameters).scalars())


@pytest.mark.parametrize("backend", [pytest.param("pg", marks=pytest.mark.pg)])
@pytest.mark.parametrize(
    ("filters", "index"),
    [
        ({}, "ix_articles_created_at_id"),
        ({"tag": "t1"}, "ix_article_tags_tag_id"),
        ({"author": "u1"}, "ix_articles_author_id_created_at"),
        ({"favorited": "u1"}, "pk_favorites"),
    ],
    ids=["newest-first", "tag", "author", "favorited"],
)
def test_list_query_can_use_its_index(real_engine: Engine, filters: dict[str, str], index: str) -> None:
    with real_engine.begin() as connection:
        connection.exec_driver_sql(_POPULATE)
    with service_db.make_session_factory(real_engine)() as db:
        plan = _page_query_plan(db, filters)

    assert index in plan, plan


@pytest.mark.parametrize("backend", ["sqlite"])
def test_sqlite_reads_the_first_page_through_the_newest_first_index(db: Session) -> None:
    """Not a sort of every article, nor a count: the page's ids from the newest-first index, the total kept."""
    plan = _page_query_plan(db, {})

    assert "SCAN articles USING COVERING INDEX ix_articles_created_at_id" in plan, plan  # the page's ids
    assert "SEARCH totals" in plan, plan  # the total: kept, not counted


#: ``_POPULATE`` in SQLite's words (a recursive series instead of generate_series).
_POPULATE_SQLITE = """
INSERT INTO users (username, username_lower, email, password_hash, token_stamp, created_at, updated_at)
  WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 50)
  SELECT 'u' || n, 'u' || n, 'u' || n || '@x.org', 'h', '0123456789abcdef', datetime(), datetime() FROM g;
INSERT INTO articles (slug, title, description, body, author_id, created_at, updated_at)
  WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 5000)
  SELECT 's' || n, 'T', 'D', 'B', (SELECT id FROM users WHERE username = 'u' || (n % 50 + 1)),
         datetime('now', '-' || n || ' minutes'), datetime() FROM g;
INSERT INTO favorites (user_id, article_id)
  SELECT u.id, a.id FROM users u JOIN articles a ON a.id % 50 = u.id % 50 AND a.id % 7 = 0;
INSERT INTO follows (follower_id, followed_id) SELECT 1, id FROM users WHERE id % 3 = 0;
ANALYZE;
"""


@pytest.mark.parametrize("backend", [pytest.param("pg", marks=pytest.mark.pg), "sqlite"])
def test_the_viewers_flags_are_index_lookups_for_the_slugs_and_names_asked(real_engine: Engine, backend: str) -> None:
    """The statement that makes a shared page a signed-in viewer's needs to read no table whole, at any size.

    Each list is reached from the viewer's own rows (the favorites and follows primary keys), then the
    articles and users by id.
    """
    with real_engine.begin() as connection:
        if backend == "pg":
            connection.exec_driver_sql(
                _POPULATE + "INSERT INTO follows (follower_id, followed_id)"
                " SELECT 1, id FROM users WHERE id %% 3 = 0; ANALYZE;"
            )
        else:
            connection.connection.driver_connection.executescript(_POPULATE_SQLITE)  # type: ignore[union-attr]
    # A page's 20 slugs, 10 of them the viewer's favorites (user 1 favorites ids = 1 mod 50 and 0 mod 7).
    slugs = [f"s{n}" for n in range(1, 5000) if n % 50 == 1 and n % 7 == 0][:10] + [f"s{n}" for n in range(2, 12)]
    names = {"favorited": slugs, "following": [f"u{n}" for n in range(1, 21)]}
    captured: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        captured.append((statement, parameters))

    with real_engine.connect() as connection:
        if backend == "pg":  # a table this small is read whole by choice: show that an index path exists
            connection.exec_driver_sql("SET enable_seqscan = off")
        event.listen(connection, "before_cursor_execute", capture)
        flags = queries.viewer_flags(connection, 1, names)
        event.remove(connection, "before_cursor_execute", capture)
        statement, parameters = captured[0]
        explain = "EXPLAIN QUERY PLAN " if backend == "sqlite" else "EXPLAIN "
        rows = connection.exec_driver_sql(explain + statement, parameters).all()
    plan = "\n".join(str(row[3] if backend == "sqlite" else row[0]) for row in rows)

    assert flags is not None and flags.flags == {
        "favorited": set(slugs[:10]),
        "following": {f"u{n}" for n in range(3, 21, 3)},
    }
    assert "Seq Scan" not in plan and not any(
        line.split("SCAN ")[1].split()[0] in ("articles", "favorites", "follows", "users")
        for line in plan.splitlines()
        if "SCAN " in line and "USING" not in line
    ), plan
