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
ALL_ARTICLES = "articles"

_POSTGRESQL = """
CREATE OR REPLACE FUNCTION conduit_count_article() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE users SET articles_count = articles_count + 1 WHERE id = NEW.author_id;
        UPDATE totals SET value = value + 1 WHERE name = 'articles';
    ELSE
        UPDATE users SET articles_count = articles_count - 1 WHERE id = OLD.author_id;
        UPDATE totals SET value = value - 1 WHERE name = 'articles';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER tr_articles_count AFTER INSERT OR DELETE ON articles
    FOR EACH ROW EXECUTE FUNCTION conduit_count_article();

CREATE OR REPLACE FUNCTION conduit_count_favorite() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE articles SET favorites_count = favorites_count + 1 WHERE id = NEW.article_id;
        UPDATE users SET favorites_count = favorites_count + 1 WHERE id = NEW.user_id;
    ELSE
        UPDATE articles SET favorites_count = favorites_count - 1 WHERE id = OLD.article_id;
        UPDATE users SET favorites_count = favorites_count - 1 WHERE id = OLD.user_id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER tr_favorites_count AFTER INSERT OR DELETE ON favorites
    FOR EACH ROW EXECUTE FUNCTION conduit_count_favorite();

CREATE OR REPLACE FUNCTION conduit_count_article_tag() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE tags SET articles_count = articles_count + 1 WHERE id = NEW.tag_id;
    ELSE
        UPDATE tags SET articles_count = articles_count - 1 WHERE id = OLD.tag_id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER tr_article_tags_count AFTER INSERT OR DELETE ON article_tags
    FOR EACH ROW EXECUTE FUNCTION conduit_count_article_tag();

CREATE OR REPLACE FUNCTION conduit_date_article_tag() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.created_at := (SELECT created_at FROM articles WHERE id = NEW.article_id);
    RETURN NEW;
END $$;
CREATE TRIGGER tr_article_tags_date BEFORE INSERT ON article_tags
    FOR EACH ROW EXECUTE FUNCTION conduit_date_article_tag();
"""

_SQLITE = [
    """CREATE TRIGGER tr_articles_count_insert AFTER INSERT ON articles BEGIN
        UPDATE users SET articles_count = articles_count + 1 WHERE id = NEW.author_id;
        UPDATE totals SET value = value + 1 WHERE name = 'articles';
    END""",
    """CREATE TRIGGER tr_articles_count_delete AFTER DELETE ON articles BEGIN
        UPDATE users SET articles_count = articles_count - 1 WHERE id = OLD.author_id;
        UPDATE totals SET value = value - 1 WHERE name = 'articles';
    END""",
    """CREATE TRIGGER tr_favorites_count_insert AFTER INSERT ON favorites BEGIN
        UPDATE articles SET favorites_count = favorites_count + 1 WHERE id = NEW.article_id;
        UPDATE users SET favorites_count = favorites_count + 1 WHERE id = NEW.user_id;
    END""",
    """CREATE TRIGGER tr_favorites_count_delete AFTER DELETE ON favorites BEGIN
        UPDATE articles SET favorites_count = favorites_count - 1 WHERE id = OLD.article_id;
        UPDATE users SET favorites_count = favorites_count - 1 WHERE id = OLD.user_id;
    END""",
    """CREATE TRIGGER tr_article_tags_count_insert AFTER INSERT ON article_tags BEGIN
        UPDATE tags SET articles_count = articles_count + 1 WHERE id = NEW.tag_id;
        UPDATE article_tags SET created_at = (SELECT created_at FROM articles WHERE id = NEW.article_id)
            WHERE article_id = NEW.article_id AND tag_id = NEW.tag_id;
    END""",
    """CREATE TRIGGER tr_article_tags_count_delete AFTER DELETE ON article_tags BEGIN
        UPDATE tags SET articles_count = articles_count - 1 WHERE id = OLD.tag_id;
    END""",
]

#: What each kept total is, counted: (table, column, its true value for the row ``id``).
RECOUNTS = {
    ("users", "articles_count"): "(SELECT count(*) FROM articles WHERE articles.author_id = users.id)",
    ("users", "favorites_count"): "(SELECT count(*) FROM favorites WHERE favorites.user_id = users.id)",
    ("tags", "articles_count"): "(SELECT count(*) FROM article_tags WHERE article_tags.tag_id = tags.id)",
    ("articles", "favorites_count"): "(SELECT count(*) FROM favorites WHERE favorites.article_id = articles.id)",
}


def create_triggers(connection: Connection) -> None:
    """Create the triggers that keep the totals, and the ``articles`` total's row."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(_POSTGRESQL)
    else:
        for statement in _SQLITE:
            connection.exec_driver_sql(statement)
    connection.execute(
        text("INSERT INTO totals (name, value) VALUES (:name, (SELECT count(*) FROM articles))"),
        {"name": ALL_ARTICLES},
    )


@event.listens_for(Base.metadata, "after_create")
def _after_create(target: Any, connection: Connection, **kw: Any) -> None:
    create_triggers(connection)
