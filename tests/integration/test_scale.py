"""At 100 000 articles every read costs what it costs at 1 000: its page, not the table.

Two databases are filled by SQL (``tests/scale.py``, seconds): 1 000 and
100 000 articles. Each read's statement, as the service sends it, is measured
on both: on PostgreSQL the buffers it touches (``EXPLAIN (ANALYZE, BUFFERS)``)
at the 1st and the 10th execution of it prepared on one connection (custom
plans first, then PostgreSQL's pick, which may be a generic plan); on SQLite
the virtual machine steps it takes. At a hundred
times the rows, a read may cost half as much again (a deeper index), not a
hundred times. The totals the reads report come from kept counts and must
equal real ones.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from webtest import TestApp

from service import db as service_db
from service import queries
from service.app import create_app
from service.db import Database
from service.ops import health
from tests import scale
from tests.conftest import make_settings
from tests.factories import auth_header

pytestmark = pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("pg", marks=pytest.mark.pg)], scope="module", indirect=False
)

#: How much more a read may cost at 100 000 articles than at 1 000: a factor, and a constant (PostgreSQL
#: buffers, SQLite steps). Every index lookup of a page's rows is a level deeper at 100 000 (about +100
#: buffers for 20 rows); a read that grew with the table would cost a hundred times more.
GROWTH, BUFFER_SLACK, STEP_SLACK = 2.0, 60, 10_000


@pytest.fixture(scope="module")
def small(backend: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Engine]:
    """A migrated database of 1 000 articles, for the module."""
    yield from _filled(backend, 1_000, tmp_path_factory, request)


@pytest.fixture(scope="module")
def big(backend: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Engine]:
    """A migrated database of 100 000 articles, for the module."""
    yield from _filled(backend, 100_000, tmp_path_factory, request)


def _filled(
    backend: str, articles: int, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Engine]:
    admin = None
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('scale') / 'big.db'}"
    else:
        base = make_url(request.getfixturevalue("pg_url"))
        name = f"conduit_scale_{uuid.uuid4().hex[:12]}"
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = base.set(database=name).render_as_string(hide_password=False)
    engine = service_db.make_engine(make_settings(database_url=url, instance_path=tmp_path_factory.mktemp("i")))
    service_db.upgrade(engine)
    with engine.begin() as connection:
        scale.fill(connection, articles)
    if backend == "pg":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE")  # as autovacuum does: index-only scans can skip the table
    yield engine
    engine.dispose()
    if admin is not None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _pg_costs(connection: Connection, statement: str, parameters: dict[str, Any]) -> tuple[int, int]:
    """Buffers touched at the 1st and the 10th execution of the statement prepared on one connection.

    As a worker's connection runs it: the first five with plans made for their
    values, then PostgreSQL's choice between those and a generic plan.
    """
    runs = scale.explain_executions(connection, statement, parameters, 10)
    return runs[0][0], runs[-1][0]


def _sqlite_steps(connection: Connection, statement: str, parameters: Any) -> int:
    """Virtual machine steps SQLite takes for the statement (counted in thousands)."""
    driver: Any = connection.connection.driver_connection
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    driver.set_progress_handler(count, 1000)
    try:
        connection.exec_driver_sql(statement, parameters).all()
    finally:
        driver.set_progress_handler(None, 0)
    return steps[0] * 1000


#: Each read as the service makes it, with what its total (if any) must equal, counted for real.
READS: dict[str, tuple[Callable[[Connection], Any], str | None]] = {
    "list": (lambda c: queries.articles_page(c, None), "SELECT count(*) FROM articles"),
    "tag": (
        lambda c: queries.articles_page(c, None, tag="t7"),
        "SELECT count(*) FROM article_tags x JOIN tags t ON t.id = x.tag_id WHERE t.name = 't7'",
    ),
    "author": (
        lambda c: queries.articles_page(c, None, author="U42"),
        "SELECT count(*) FROM articles a JOIN users u ON u.id = a.author_id WHERE u.username = 'u42'",
    ),
    "favorited": (
        lambda c: queries.articles_page(c, None, favorited="u42"),
        "SELECT count(*) FROM favorites f JOIN users u ON u.id = f.user_id WHERE u.username = 'u42'",
    ),
    "tag and author": (
        lambda c: queries.articles_page(c, None, tag="t7", author="u42"),
        "SELECT count(*) FROM articles a JOIN users u ON u.id = a.author_id JOIN article_tags x ON x.article_id = a.id"
        " JOIN tags t ON t.id = x.tag_id WHERE u.username = 'u42' AND t.name = 't7'",
    ),
    "signed-in list": (lambda c: queries.articles_page(c, 42), "SELECT count(*) FROM articles"),
    "feed": (
        lambda c: queries.feed_page(c, 42),
        "SELECT count(*) FROM articles a JOIN follows f ON f.followed_id = a.author_id WHERE f.follower_id = 42",
    ),
    "article": (lambda c: queries.article_by_slug(c, "s777", None), None),
    "comments": (lambda c: queries.comments_by_slug(c, "s777", None), None),
    "profile": (lambda c: queries.profile_row(c, "u42", None), None),
    "tags": (lambda c: queries.tag_names(c), None),
}


def _cost(engine: Engine, backend: str, read: Callable[[Connection], Any], truth: str | None = None) -> list[int]:
    """What ``read`` costs on ``engine``: [custom, generic] buffers on PostgreSQL, [steps] on SQLite."""
    with engine.connect() as connection:
        statement, parameters, result = scale.last_statement(connection, read)
        if truth is not None:
            assert result[1] == connection.exec_driver_sql(truth).scalar_one(), "the total is not the real count"
            assert len(result[0]) == min(20, result[1])
        if backend == "pg":
            return list(_pg_costs(connection, statement, parameters))
        return [_sqlite_steps(connection, statement, parameters)]


@pytest.mark.parametrize("read", READS)
def test_a_first_page_costs_the_same_at_100_000_articles_as_at_1_000(
    small: Engine, big: Engine, backend: str, read: str
) -> None:
    fetch, truth = READS[read]

    at_1k, at_100k = _cost(small, backend, fetch, truth), _cost(big, backend, fetch, truth)

    slack = BUFFER_SLACK if backend == "pg" else STEP_SLACK
    assert all(b <= GROWTH * a + slack for a, b in zip(at_1k, at_100k, strict=True)), (at_1k, at_100k)


@pytest.mark.parametrize(("filters", "offset"), [({}, 10_000), ({"tag": "t7"}, 5_000)], ids=["list", "tag"])
def test_a_deep_page_costs_the_index_entries_it_skips(
    big: Engine, backend: str, filters: dict[str, str], offset: int
) -> None:
    first = _cost(big, backend, lambda c: queries.articles_page(c, None, **filters))
    with big.connect() as connection:
        assert len(queries.articles_page(connection, None, offset=offset, **filters)[0]) == 20

    deep = _cost(big, backend, lambda c: queries.articles_page(c, None, offset=offset, **filters))

    # Index entries only: a few hundred entries a buffer (a few steps each), never the skipped rows themselves.
    bound = offset // 100 if backend == "pg" else 10 * offset
    assert all(d <= f + bound for f, d in zip(first, deep, strict=True)), (first, deep)


def test_kept_totals_stay_exact_under_concurrent_writers(big: Engine, backend: str, tmp_path: Path) -> None:
    """Creates, deletes, favorites and unfavorites from 6 threads at once, through the service."""
    with Session(big) as session:
        users = session.execute(text("SELECT id FROM users ORDER BY id LIMIT 6")).scalars().all()
        from service.models import User

        headers = [auth_header(session.get(User, user_id)) for user_id in users]  # type: ignore[arg-type]
    app = TestApp(create_app(make_settings(instance_path=tmp_path), database=Database.on(big)))
    errors: list[str] = []

    def write(n: int) -> None:
        me = headers[n]
        try:
            for i in range(8):
                made = app.post_json(
                    "/api/articles",
                    {"article": {"title": f"c{n}-{i}", "description": "d", "body": "b", "tagList": ["t1", f"n{n}"]}},
                    headers=me,
                ).json["article"]["slug"]
                for slug in ("s1", "s2", made):
                    app.post(f"/api/articles/{slug}/favorite", headers=me)
                app.delete("/api/articles/s2/favorite", headers=me)
                if i % 2:
                    app.delete(f"/api/articles/{made}", headers=me, status=204)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    with Session(big) as session:
        assert health.totals_mismatches(session) == []
    listed = app.get("/api/articles?tag=t1").json["articlesCount"]
    with big.connect() as connection:
        counted = connection.exec_driver_sql(
            "SELECT count(*) FROM article_tags x JOIN tags t ON t.id = x.tag_id WHERE t.name = 't1'"
        ).scalar_one()
    assert listed == counted
    assert app.get("/api/articles/s1").json["article"]["favoritesCount"] >= 6
