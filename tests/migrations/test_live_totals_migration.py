"""The kept-totals migration on a live PostgreSQL site: writes go on, none waits a second, totals end exact.

The database is at the revision before, filled with 100 000 articles by SQL;
while ``alembic upgrade`` runs, a writer keeps doing what the service's writes
do (publish an article with two tags, favorite, unfavorite, delete), each a
transaction of its own, and records how long each took.
"""

from __future__ import annotations

import threading
import time

import pytest
from alembic import command
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session

from service import db as service_db
from service.ops import health
from tests import scale

pytestmark = [pytest.mark.migrations, pytest.mark.slow]

BEFORE = "5e1f0c2a7b93"


def _writes(engine: Engine, stop: threading.Event, took: list[float], failures: list[str]) -> None:
    n = 0
    while not stop.is_set():
        n += 1
        started = time.perf_counter()
        try:
            with engine.begin() as connection:
                article = connection.execute(
                    text(
                        "INSERT INTO articles (slug, title, description, body, author_id, created_at, updated_at)"
                        " VALUES (:slug, 'T', 'D', 'B', 1 + :n % 50, now(), now()) RETURNING id"
                    ),
                    {"slug": f"live-{n}", "n": n},
                ).scalar_one()
                connection.execute(
                    text(
                        "INSERT INTO article_tags (article_id, tag_id)"
                        " VALUES (:a, 1 + :n % 25), (:a, 1 + (:n + 5) % 25)"
                    ),
                    {"a": article, "n": n},
                )
                connection.execute(
                    text("INSERT INTO favorites (user_id, article_id) VALUES (1 + :n % 50, :a)"), {"a": article, "n": n}
                )
                if n % 3 == 0:
                    connection.execute(text("DELETE FROM favorites WHERE article_id = :a"), {"a": article})
                if n % 5 == 0:
                    connection.execute(text("DELETE FROM articles WHERE id = :a"), {"a": article})
        except Exception as exc:  # pragma: no cover - reported by the test
            failures.append(repr(exc))
        took.append(time.perf_counter() - started)


@pytest.mark.parametrize("backend", [pytest.param("pg", marks=pytest.mark.pg)])
def test_the_totals_migration_never_holds_a_write_for_a_second(backend: str, throwaway_pg_url: str) -> None:
    config = service_db.alembic_config(throwaway_pg_url)
    config.attributes["configure_logging"] = False
    command.upgrade(config, BEFORE)
    engine = create_engine(throwaway_pg_url)
    with engine.begin() as connection:
        scale.fill(connection, 100_000)
    stop, took, failures = threading.Event(), [], []
    writer = threading.Thread(target=_writes, args=(engine, stop, took, failures))
    writer.start()
    time.sleep(0.5)
    started = time.perf_counter()
    try:
        command.upgrade(config, "head")
    finally:
        migrated_in = time.perf_counter() - started
        time.sleep(0.5)
        stop.set()
        writer.join()

    assert failures == []
    assert len(took) > 20, "the writer should have kept writing during the migration"
    assert max(took) < 1.0, f"a write waited {max(took):.2f} s (migration took {migrated_in:.1f} s)"
    with Session(engine) as session:
        assert health.totals_mismatches(session) == []
        undated = session.execute(text("SELECT count(*) FROM article_tags WHERE created_at IS NULL")).scalar_one()
    assert undated == 0
    engine.dispose()
