"""Health endpoints for load balancers and orchestrators."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import event, text
from sqlalchemy.orm import Session, sessionmaker
from webtest import TestApp

from service import db as service_db
from service.db import Database


def _stamp_head(db: Session) -> None:
    db.execute(text("CREATE TABLE IF NOT EXISTS alembic_version (version_num VARCHAR(32) NOT NULL)"))
    db.execute(text("DELETE FROM alembic_version"))
    db.execute(text("INSERT INTO alembic_version VALUES (:v)"), {"v": service_db.expected_head()})
    db.commit()


def test_healthz_answers_without_touching_the_database(client: TestApp, session_factory: sessionmaker[Session]) -> None:
    statements: list[str] = []
    bind = session_factory.kw["bind"]
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(bind, "before_cursor_execute", listener)

    body = client.get("/healthz").json

    event.remove(bind, "before_cursor_execute", listener)
    assert body == {"status": "ok"}
    assert statements == []


def test_readyz_is_ok_when_the_schema_is_at_head(client: TestApp, db: Session) -> None:
    _stamp_head(db)

    body = client.get("/readyz").json

    assert body == {"status": "ok", "checks": {"database": "ok", "migrations": "ok", "cache": "ok"}}


def test_readyz_is_503_when_migrations_are_behind(client: TestApp, db: Session) -> None:
    _stamp_head(db)
    db.execute(text("UPDATE alembic_version SET version_num = 'old'"))
    db.commit()

    response = client.get("/readyz", status=503)

    assert list(response.json["errors"]) == ["migrations"]
    assert response.headers["Retry-After"]


def test_health_endpoints_are_not_under_api(client: TestApp) -> None:
    client.get("/api/healthz", status=404)


def test_readyz_reports_shared_storages_and_fails_only_for_required_ones(
    session_factory: sessionmaker[Session], db: Session, tmp_path: object
) -> None:
    from service.app import create_app
    from tests.conftest import make_settings

    _stamp_head(db)
    down = "redis://127.0.0.1:1/0"  # nothing listens there
    open_app = TestApp(
        create_app(
            make_settings(instance_path=tmp_path, ratelimit_enabled=True, ratelimit_storage_uri=down, cache_url=down),
            database=Database(session_factory),
        )
    )
    closed_app = TestApp(
        create_app(
            make_settings(
                instance_path=tmp_path,
                ratelimit_enabled=True,
                ratelimit_storage_uri=down,
                ratelimit_swallow_errors=False,
            ),
            database=Database(session_factory),
        )
    )

    degraded = open_app.get("/readyz").json
    refused = closed_app.get("/readyz", status=503).json

    assert degraded["checks"] == {
        "database": "ok",
        "migrations": "ok",
        "cache": "unavailable",
        "rate_limit_storage": "unavailable",
    }
    assert refused == {"errors": {"rate_limit_storage": ["unavailable"]}}


def test_readyz_is_503_when_no_migration_scripts_can_be_found(
    client: TestApp, db: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _stamp_head(db)
    # What an installation without its migrations looks like (the wheel once shipped none).
    monkeypatch.setattr(service_db, "migrations_path", lambda: tmp_path)
    service_db.expected_head.cache_clear()

    try:
        response = client.get("/readyz", status=503)
    finally:
        service_db.expected_head.cache_clear()

    assert response.json == {"errors": {"migrations": [f"no migration scripts in {tmp_path}"]}}
