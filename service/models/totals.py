"""Totals kept as data, by triggers, so that no read counts a table.

``articlesCount`` and ``favoritesCount`` are exact, and a list's total must
not cost a count of every match (at a million articles, ``count(*)`` of a tag
took seconds). The database keeps them, in the same transaction as the write
that changes them, whatever made it (the API, an admin command, a cascade):

- ``totals``: one row per kept total; ``articles`` is every article;
- ``users.articles_count`` and ``users.favorites_count``: per author and favoriter;
- ``tags.articles_count``: per tag (also "is the tag in use");
- ``articles.favorites_count``: per article;
- ``article_tags.created_at``: the article's, copied, for the ``?tag=`` index.

A trigger adds to a row with ``UPDATE ... SET n = n + 1``, which locks it until
the transaction ends, so concurrent writers on PostgreSQL queue on the row and
the sum stays exact; SQLite has one writer at a time. The favorites trigger
locks the article before the user, in the order a cascade from a deleted
article does, so the two cannot deadlock.

The same triggers are created by the migration that introduced them (a frozen
copy, as migrations are); here they are attached to the metadata, so a schema
made by ``create_all`` (tests) has them too. A SQLite batch migration (a copy
of a table) drops the triggers of that table: such a migration must create
them again.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Column, Connection, String, Table, event, text

from service.models.base import Base

#: Kept totals by name; the row ``articles`` counts every article.
totals = Table(
    "totals",
    Base.metadata,
    Column("name", String(32), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

#: The name of the total of every article.
ARTICLES_TOTAL = "articles"

#: What each counting trigger keeps: its name (``tr_<name>``), the table it watches, the PostgreSQL
#: function it runs, and the rows it adds one to on an insert (one less on a delete): (table,
#: column, which row, ``{row}`` being ``NEW`` or ``OLD``). The favorites trigger locks the article
#: before the user, in the order a cascade from a deleted article does.
_COUNTERS = (
    (
        "articles_count",
        "articles",
        "conduit_count_article",
        (("users", "articles_count", "id = {row}.author_id"), ("totals", "value", "name = 'articles'")),
    ),
    (
        "favorites_count",
        "favorites",
        "conduit_count_favorite",
        (("articles", "favorites_count", "id = {row}.article_id"), ("users", "favorites_count", "id = {row}.user_id")),
    ),
    (
        "article_tags_count",
        "article_tags",
        "conduit_count_article_tag",
        (("tags", "articles_count", "id = {row}.tag_id"),),
    ),
)
#: ``article_tags.created_at`` is the article's: PostgreSQL sets it before the insert, SQLite after.
_ARTICLE_DATE = "(SELECT created_at FROM articles WHERE id = NEW.article_id)"


def _updates(counts: tuple[tuple[str, str, str], ...], row: str, sign: str) -> str:
    return "\n".join(
        f"UPDATE {table} SET {c} = {c} {sign} 1 WHERE {which.format(row=row)};" for table, c, which in counts
    )


def _postgresql() -> list[str]:
    statements = []
    for name, table, function, counts in _COUNTERS:
        statements.append(
            f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            f"BEGIN\nIF TG_OP = 'INSERT' THEN\n{_updates(counts, 'NEW', '+')}\n"
            f"ELSE\n{_updates(counts, 'OLD', '-')}\nEND IF;\nRETURN NULL;\nEND $$"
        )
        statements.append(
            f"CREATE TRIGGER tr_{name} AFTER INSERT OR DELETE ON {table} FOR EACH ROW EXECUTE FUNCTION {function}()"
        )
    statements.append(
        "CREATE OR REPLACE FUNCTION conduit_date_article_tag() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        f"BEGIN\nNEW.created_at := {_ARTICLE_DATE};\nRETURN NEW;\nEND $$"
    )
    statements.append(
        "CREATE TRIGGER tr_article_tags_date BEFORE INSERT ON article_tags"
        " FOR EACH ROW EXECUTE FUNCTION conduit_date_article_tag()"
    )
    return statements


def _sqlite() -> list[str]:
    statements = []
    for name, table, _, counts in _COUNTERS:
        inserted = _updates(counts, "NEW", "+")
        if table == "article_tags":
            inserted += (
                f"\nUPDATE article_tags SET created_at = {_ARTICLE_DATE}"
                " WHERE article_id = NEW.article_id AND tag_id = NEW.tag_id;"
            )
        statements.append(f"CREATE TRIGGER tr_{name}_insert AFTER INSERT ON {table} BEGIN\n{inserted}\nEND")
        statements.append(
            f"CREATE TRIGGER tr_{name}_delete AFTER DELETE ON {table} BEGIN\n{_updates(counts, 'OLD', '-')}\nEND"
        )
    return statements


#: What each kept total is, counted: (table, column, its true value for the row ``id``).
RECOUNTS = {
    ("users", "articles_count"): "(SELECT count(*) FROM articles WHERE articles.author_id = users.id)",
    ("users", "favorites_count"): "(SELECT count(*) FROM favorites WHERE favorites.user_id = users.id)",
    ("tags", "articles_count"): "(SELECT count(*) FROM article_tags WHERE article_tags.tag_id = tags.id)",
    ("articles", "favorites_count"): "(SELECT count(*) FROM favorites WHERE favorites.article_id = articles.id)",
}


def create_triggers(connection: Connection) -> None:
    """Create the triggers that keep the totals, and the ``articles`` total's row."""
    for statement in _postgresql() if connection.dialect.name == "postgresql" else _sqlite():
        connection.exec_driver_sql(statement)
    connection.execute(
        text("INSERT INTO totals (name, value) VALUES (:name, (SELECT count(*) FROM articles))"),
        {"name": ARTICLES_TOTAL},
    )


@event.listens_for(Base.metadata, "after_create")
def _after_create(target: Any, connection: Connection, **kw: Any) -> None:
    create_triggers(connection)
