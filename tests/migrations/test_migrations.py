"""Alembic owns the schema: one head, a clean round trip, and models equal to migrations."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

from service import db as service_db
from service.models import Base

pytestmark = pytest.mark.migrations


@pytest.fixture
def migration_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """An empty database of the backend under test."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'migrations.db'}"
    return str(request.getfixturevalue("throwaway_pg_url"))


def _config(url: str) -> object:
    config = service_db.alembic_config(url)
    config.attributes["configure_logging"] = False
    return config


def test_there_is_a_single_head() -> None:
    assert len(ScriptDirectory.from_config(service_db.alembic_config()).get_heads()) == 1


def test_upgrade_downgrade_upgrade_round_trip(migration_url: str) -> None:
    config = _config(migration_url)
    engine = create_engine(migration_url)

    command.upgrade(config, "head")
    tables_at_head = set(inspect(engine).get_table_names())
    command.downgrade(config, "base")
    tables_at_base = set(inspect(engine).get_table_names())
    command.upgrade(config, "head")

    assert tables_at_head >= {"users", "follows", "articles", "tags", "article_tags", "favorites", "comments"}
    assert tables_at_base <= {"alembic_version"}
    assert set(inspect(engine).get_table_names()) == tables_at_head
    engine.dispose()


def test_models_match_migrations(migration_url: str) -> None:
    command.upgrade(_config(migration_url), "head")
    engine = create_engine(migration_url)

    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()

    assert diff == []


def test_offline_sql_can_be_generated(capsys: pytest.CaptureFixture[str]) -> None:
    command.upgrade(_config("postgresql+psycopg://localhost/offline"), "head", sql=True)

    assert "CREATE TABLE articles" in capsys.readouterr().out
