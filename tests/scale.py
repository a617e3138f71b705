"""Our schema filled by SQL, at any size, in seconds: for the plan tests and ``bench/scale.py``.

Proportions like a big Conduit site: per 20 articles one user; 25 tags, each
article carrying 2 or 3 of them (a tag is on about a tenth of the articles);
one favorite per article; five follows per user. Articles are a second apart,
newest last. On SQLite the triggers that keep the totals run as rows go in;
on PostgreSQL they are switched off for the bulk insert (a million updates of
one row in one transaction grow its chain of versions quadratically) and the
totals are counted afterwards, as the migration that introduced them does.
Either way they are exact from the start.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, event

TAGS = 25
#: The tables whose triggers keep totals.
_COUNTED = ("articles", "favorites", "article_tags")


def _postgresql(articles: int) -> list[str]:
    users = max(articles // 20, 10)
    return [
        "INSERT INTO users (username, username_lower, email, password_hash, token_stamp, created_at, updated_at)"
        f" SELECT 'u' || g, 'u' || g, 'u' || g || '@x.org', 'h', '0123456789abcdef', now(), now()"
        f" FROM generate_series(1, {users}) g",
        f"INSERT INTO tags (name) SELECT 't' || g FROM generate_series(1, {TAGS}) g",
        "INSERT INTO articles (slug, title, description, body, author_id, created_at, updated_at)"
        f" SELECT 's' || g, 'T' || g, 'D', 'B', (SELECT min(id) FROM users) + (g::bigint * 7919) % {users},"
        f" now() - ({articles} - g) * interval '1 second', now() FROM generate_series(1, {articles}) g",
        "INSERT INTO article_tags (article_id, tag_id)"
        f" SELECT a.id, (SELECT min(id) FROM tags) + (a.id * 3 + k * 11) % {TAGS}"
        " FROM articles a CROSS JOIN generate_series(0, 2) k WHERE k < 2 OR a.id % 2 = 0",
        "INSERT INTO favorites (user_id, article_id)"
        f" SELECT (SELECT min(id) FROM users) + g % {users}, (SELECT min(id) FROM articles) + (g * 7) % {articles}"
        f" FROM generate_series(1, {articles}) g",
        "INSERT INTO follows (follower_id, followed_id)"
        f" SELECT u.id, (SELECT min(id) FROM users) + (u.id + k * 37) % {users}"
        " FROM users u CROSS JOIN generate_series(1, 5) k",
        "ANALYZE",
    ]


def _sqlite(articles: int) -> list[str]:
    users = max(articles // 20, 10)
    numbers = "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {})"
    return [
        f"{numbers.format(users)} INSERT INTO users"
        " (username, username_lower, email, password_hash, token_stamp, created_at, updated_at)"
        " SELECT 'u' || n, 'u' || n, 'u' || n || '@x.org', 'h', '0123456789abcdef',"
        " '2026-01-01 00:00:00.000000', '2026-01-01 00:00:00.000000' FROM g",
        f"{numbers.format(TAGS)} INSERT INTO tags (name) SELECT 't' || n FROM g",
        f"{numbers.format(articles)} INSERT INTO articles"
        " (slug, title, description, body, author_id, created_at, updated_at)"
        f" SELECT 's' || n, 'T' || n, 'D', 'B', (SELECT min(id) FROM users) + (n * 7919) % {users},"
        " strftime('%Y-%m-%d %H:%M:%S', 1700000000 + n, 'unixepoch') || '.000000',"
        " '2026-01-01 00:00:00.000000' FROM g",
        "WITH k(n) AS (VALUES (0), (1), (2)) INSERT INTO article_tags (article_id, tag_id)"
        f" SELECT a.id, (SELECT min(id) FROM tags) + (a.id * 3 + k.n * 11) % {TAGS}"
        " FROM articles a CROSS JOIN k WHERE k.n < 2 OR a.id % 2 = 0",
        f"{numbers.format(articles)} INSERT INTO favorites (user_id, article_id)"
        f" SELECT (SELECT min(id) FROM users) + n % {users}, (SELECT min(id) FROM articles) + (n * 7) % {articles}"
        " FROM g",
        "WITH k(n) AS (VALUES (1), (2), (3), (4), (5)) INSERT INTO follows (follower_id, followed_id)"
        f" SELECT u.id, (SELECT min(id) FROM users) + (u.id + k.n * 37) % {users} FROM users u CROSS JOIN k",
        "ANALYZE",
    ]


def fill(connection: Connection, articles: int) -> None:
    """Fill an empty, migrated database with ``articles`` articles and the rest in proportion."""
    if connection.dialect.name != "postgresql":
        for statement in _sqlite(articles):
            connection.exec_driver_sql(statement)
        return
    kept = connection.exec_driver_sql("SELECT to_regclass('totals') IS NOT NULL").scalar()  # older schemas have none
    if kept:
        for table in _COUNTED:
            connection.exec_driver_sql(f"ALTER TABLE {table} DISABLE TRIGGER USER")
    for statement in _postgresql(articles):
        connection.exec_driver_sql(statement.replace("%", "%%"))  # the driver's escape
    if kept:
        from service.models import RECOUNTS  # here: an older checkout's models have none

        for table in _COUNTED:
            connection.exec_driver_sql(f"ALTER TABLE {table} ENABLE TRIGGER USER")
        for (table, column), truth in RECOUNTS.items():
            connection.exec_driver_sql(f"UPDATE {table} SET {column} = {truth}")
        connection.exec_driver_sql(
            # The row of every article, by the name the migration gave it (models.totals.ARTICLES_TOTAL).
            "UPDATE totals SET value = (SELECT count(*) FROM articles) WHERE name = 'articles'"
        )
        connection.exec_driver_sql(
            "UPDATE article_tags SET created_at = a.created_at FROM articles a WHERE a.id = article_tags.article_id"
        )
        connection.exec_driver_sql("ANALYZE")


def last_statement(connection: Connection, read: Callable[[Connection], Any]) -> tuple[str, Any, Any]:
    """The last statement ``read`` sent on ``connection``, its parameters, and what ``read`` returned."""
    captured: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        captured.append((statement, parameters))

    event.listen(connection, "before_cursor_execute", capture)
    try:
        result = read(connection)
    finally:
        event.remove(connection, "before_cursor_execute", capture)
    return *captured[-1], result


def explain_executions(
    connection: Connection, statement: str, parameters: dict[str, Any], times: int, *, generic: bool = False
) -> list[tuple[int, float]]:
    """(buffers touched, ms) of ``times`` executions of the statement prepared on ``connection`` (PostgreSQL).

    As a worker's connection runs it: PostgreSQL plans the first five executions
    with their values and may then switch to a generic plan; ``generic=True``
    forces the generic plan from the first.
    """
    names: list[str] = []

    def positional(match: re.Match[str]) -> str:
        if match[1] not in names:
            names.append(match[1])
        return f"${names.index(match[1]) + 1}"

    numbered = re.sub(r"%\((\w+)\)s", positional, statement).replace("%%", "%")
    types = ", ".join("text" if isinstance(parameters[n], str) else "bigint" for n in names)
    values = ", ".join(_literal(parameters[n]) for n in names)
    driver: Any = connection.connection.driver_connection
    name = f"q_{uuid.uuid4().hex[:8]}"
    driver.execute(f"SET plan_cache_mode = {'force_generic_plan' if generic else 'auto'}")
    runs = []
    try:
        driver.execute(f"PREPARE {name}{f'({types})' if types else ''} AS {numbered}")
        for _ in range(times):
            plan = driver.execute(
                f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE {name}{f'({values})' if values else ''}"
            )
            top = plan.fetchone()[0][0]
            node = top["Plan"]
            runs.append((int(node["Shared Hit Blocks"] + node["Shared Read Blocks"]), float(top["Execution Time"])))
        driver.execute(f"DEALLOCATE {name}")
    finally:
        driver.execute("RESET plan_cache_mode")
    return runs


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return str(int(value))
