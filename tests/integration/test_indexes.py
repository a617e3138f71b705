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
