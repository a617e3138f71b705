"""Revisions that move data keep every row: ids never reused, case-insensitive usernames, token stamps."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, create_engine, text

from service import db as service_db

pytestmark = pytest.mark.migrations

#: The schema as first released, before any of the revisions under test.
FIRST = "015feb240ee1"
NOW = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
def old_database(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Engine]:
    """A database at the first revision with three users whose names differ only in case."""
    url = (
        f"sqlite:///{tmp_path / 'old.db'}" if backend == "sqlite" else str(request.getfixturevalue("throwaway_pg_url"))
    )
    config = service_db.alembic_config(url)
    config.attributes["configure_logging"] = False
    command.upgrade(config, FIRST)
    engine = create_engine(url)
    with engine.begin() as connection:
        # No explicit ids: they come from the database (1 to 4), as they would in production.
        for n, name in enumerate(("jake", "JAKE", "Jake", "anne")):
            connection.execute(
                text(
                    "INSERT INTO users (username, email, password_hash, created_at, updated_at)"
                    " VALUES (:name, :email, 'x', :now, :now)"
                ),
                {"name": name, "email": f"user{n}@x.org", "now": NOW},
            )
        connection.execute(text("INSERT INTO follows VALUES (2, 1), (4, 1)"))
        connection.execute(
            text(
                "INSERT INTO articles (slug, title, description, body, author_id, created_at, updated_at)"
                " VALUES ('s', 't', 'd', 'b', 1, :now, :now)"
            ),
            {"now": NOW},
        )
        connection.execute(
            text(
                "INSERT INTO comments (body, article_id, author_id, created_at, updated_at)"
                " VALUES ('c', 1, 2, :now, :now)"
            ),
            {"now": NOW},
        )
    command.upgrade(config, "head")
    yield engine
    engine.dispose()


def test_the_oldest_holder_keeps_a_name_and_later_case_variants_are_renamed(old_database: Engine) -> None:
    with old_database.connect() as connection:
        rows = connection.execute(text("SELECT id, username, username_lower FROM users ORDER BY id")).all()

    assert [tuple(row) for row in rows] == [
        (1, "jake", "jake"),
        (2, "JAKE_2", "jake_2"),
        (3, "Jake_3", "jake_3"),
        (4, "anne", "anne"),
    ]


def test_no_follow_article_or_comment_is_lost_by_the_table_copies(old_database: Engine) -> None:
    with old_database.connect() as connection:
        counts = [connection.scalar(text(f"SELECT count(*) FROM {t}")) for t in ("follows", "articles", "comments")]

    assert counts == [2, 1, 1]


def test_every_existing_user_gets_a_token_stamp_of_its_own(old_database: Engine) -> None:
    with old_database.connect() as connection:
        stamps = list(connection.scalars(text("SELECT token_stamp FROM users")))

    assert len(set(stamps)) == 4 and all(len(stamp) == 16 for stamp in stamps)


def test_a_deleted_newest_id_is_never_given_out_again(old_database: Engine) -> None:
    with old_database.begin() as connection:
        connection.execute(text("DELETE FROM comments WHERE id = 1"))
        connection.execute(
            text(
                "INSERT INTO comments (body, article_id, author_id, created_at, updated_at)"
                " VALUES ('again', 1, 4, :now, :now)"
            ),
            {"now": NOW},
        )
        new_id = connection.scalar(text("SELECT id FROM comments"))

    assert new_id == 2


def test_the_migrations_can_be_undone_to_the_first_revision(old_database: Engine) -> None:
    config = service_db.alembic_config(old_database.url.render_as_string(hide_password=False))
    config.attributes["configure_logging"] = False

    command.downgrade(config, FIRST)

    with old_database.connect() as connection:
        assert connection.scalar(text("SELECT count(*) FROM follows")) == 2
