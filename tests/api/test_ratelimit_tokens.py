"""A token that fails authentication counts against its address, never against the account it names."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker
from webtest import TestApp

from service.app import create_app
from service.db import Database
from tests.conftest import make_settings
from tests.factories import PASSWORD, make_user


@pytest.fixture
def limited(session_factory: sessionmaker[Session], tmp_path: Path) -> TestApp:
    settings = make_settings(
        instance_path=tmp_path,
        ratelimit_enabled=True,
        ratelimit_default="20/minute",
        ratelimit_writes="5/minute",
        ratelimit_login="100/minute",
    )
    return TestApp(create_app(settings, database=Database(session_factory)))


def sign_in(app: TestApp, address: str) -> dict[str, str]:
    body = {"user": {"email": "jake@example.org", "password": PASSWORD}}
    token = app.post_json("/api/users/login", body, extra_environ={"REMOTE_ADDR": address}).json["user"]["token"]
    return {"Authorization": f"Token {token}"}


def test_a_revoked_token_spends_nothing_of_its_owners_limits(limited: TestApp, db: Session) -> None:
    make_user(db, "jake")
    stolen = sign_in(limited, "10.0.0.1")
    limited.post("/api/user/logout", headers=stolen, extra_environ={"REMOTE_ADDR": "10.0.0.1"}, status=204)
    mine = sign_in(limited, "10.0.0.1")
    thief = {"REMOTE_ADDR": "10.6.6.6"}
    article = {"article": {"title": "t", "description": "d", "body": "b"}}

    writes = [
        limited.post_json("/api/articles", article, headers=stolen, extra_environ=thief, status="*") for _ in range(8)
    ]
    reads = [limited.get("/api/user", headers=stolen, extra_environ=thief, status="*") for _ in range(20)]

    assert {r.status_int for r in writes} == {401}
    assert {r.status_int for r in reads} == {401, 429}  # the thief's address ran out
    owner = {"REMOTE_ADDR": "10.0.0.2"}
    assert limited.post_json("/api/articles", article, headers=mine, extra_environ=owner).status_int == 201
    assert limited.get("/api/user", headers=mine, extra_environ=owner).status_int == 200


def test_an_accepted_token_counts_against_its_user_from_any_address(limited: TestApp, db: Session) -> None:
    make_user(db, "jake")
    mine = sign_in(limited, "10.0.0.1")
    article = {"article": {"title": "t", "description": "d", "body": "b"}}

    statuses = [
        limited.post_json(
            "/api/articles", article, headers=mine, extra_environ={"REMOTE_ADDR": f"10.1.0.{n}"}, status="*"
        ).status_int
        for n in range(7)
    ]

    assert statuses == [201] * 5 + [429] * 2
