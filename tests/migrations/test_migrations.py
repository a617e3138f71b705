"""Alembic owns the schema: one head, a clean round trip, and models equal to migrations."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from service import db as service_db
from service.models import Base
from tests.conftest import make_settings

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


def _triggers(url: str) -> dict[str, str]:
    """Every trigger of the database, and each trigger function's source on PostgreSQL, whitespace folded."""
    engine = create_engine(url)
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            rows = connection.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")).all()
        else:
            rows = connection.execute(
                text(
                    "SELECT tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t WHERE NOT tgisinternal"
                    " UNION ALL SELECT proname, prosrc FROM pg_proc WHERE proname LIKE 'conduit\\_%'"
                )
            ).all()
    engine.dispose()
    return {name: " ".join(source.split()) for name, source in rows}


def test_the_migrations_create_the_triggers_the_models_generate(
    backend: str, migration_url: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    # The migration keeps a frozen copy of models/totals.py's triggers: the two must not drift apart.
    command.upgrade(_config(migration_url), "head")
    generated_url = (
        f"sqlite:///{tmp_path / 'generated.db'}"
        if backend == "sqlite"
        else str(request.getfixturevalue("second_pg_url"))
    )
    engine = create_engine(generated_url)
    Base.metadata.create_all(engine)
    engine.dispose()

    migrated, generated = _triggers(migration_url), _triggers(generated_url)

    assert len(generated) >= 6
    assert migrated == generated


def test_a_connection_that_migrated_goes_back_to_its_pool_with_foreign_keys_on(tmp_path: Path) -> None:
    # It stayed in the migration's transaction, where SQLite ignores PRAGMA foreign_keys: the next request on
    # the same engine then deleted articles without their tags (issue 34's concurrent-totals test found it).
    engine = service_db.make_engine(
        make_settings(database_url=f"sqlite:///{tmp_path / 'fk.db'}", instance_path=tmp_path)
    )
    service_db.upgrade(engine)

    connections = [engine.connect() for _ in range(3)]  # the migration's pooled connection among them
    try:
        assert [c.exec_driver_sql("PRAGMA foreign_keys").scalar() for c in connections] == [1, 1, 1]
    finally:
        for connection in connections:
            connection.close()
        engine.dispose()


def test_the_live_totals_revision_runs_again_over_what_a_failed_run_left(throwaway_pg_url: str) -> None:
    """7a4d2e9c1b05 commits statement by statement on PostgreSQL: a run cut short (a lock_timeout) left its
    first columns, its table and a trigger; running it again finishes the job (squawk's prefer-robust-stmts)."""
    config = _config(throwaway_pg_url)
    command.upgrade(config, "5e1f0c2a7b93")
    engine = create_engine(throwaway_pg_url)
    with engine.begin() as connection:  # what the first statements of a failed run had committed
        connection.execute(text("ALTER TABLE users ADD COLUMN articles_count INTEGER DEFAULT 0 NOT NULL"))
        connection.execute(text("CREATE TABLE totals (name VARCHAR(32) PRIMARY KEY, value BIGINT NOT NULL)"))
        connection.execute(text("INSERT INTO totals (name, value) VALUES ('articles', 0)"))
    command.upgrade(config, "head")

    with engine.connect() as connection:
        head = ScriptDirectory.from_config(config).get_current_head()  # type: ignore[arg-type]
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == head
        assert connection.execute(text("SELECT count(*) FROM totals")).scalar() == 1
    engine.dispose()
