"""Rate limits by environment: production strict per operation, development generous for client suites."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker
from webtest import TestApp

from service.app import create_app
from service.db import Database
from tests.conftest import TEST_SECRET, make_settings


def app_for(env: str, session_factory: sessionmaker[Session], tmp_path: Path) -> TestApp:
    # Every rate-limit setting left at its default: only the environment is chosen.
    settings = make_settings(
        env=env, secret_key=TEST_SECRET, instance_path=tmp_path, ratelimit_enabled=True, cache_url="null"
    )
    return TestApp(create_app(settings, database=Database(session_factory)))


def registration(n: int) -> dict[str, dict[str, str]]:
    return {"user": {"username": f"user{n}", "email": f"user{n}@x.org", "password": "password1"}}


def test_production_refuses_the_sixth_registration_a_minute_from_one_address(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    client = app_for("production", session_factory, tmp_path)
    for n in range(5):
        client.post_json("/api/users", registration(n), status=201)

    refused = client.post_json("/api/users", registration(5), status=429)

    wait = int(refused.headers["Retry-After"])
    message = f"too many attempts from this address; try again in {wait} second{'' if wait == 1 else 's'}"
    assert refused.json == {"errors": {"registration": [message]}} and 1 <= wait <= 60


def test_production_refuses_the_eleventh_login_a_minute_for_one_account(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    client = app_for("production", session_factory, tmp_path)
    guess = {"user": {"email": "someone@x.org", "password": "wrong-guess"}}
    for n in range(10):
        client.post_json("/api/users/login", guess, extra_environ={"REMOTE_ADDR": f"10.0.0.{n}"}, status=401)

    client.post_json("/api/users/login", guess, extra_environ={"REMOTE_ADDR": "10.0.1.1"}, status=429)


@pytest.mark.parametrize("env", ["development", "testing"])
def test_development_lets_a_client_suite_register_log_in_and_write_from_one_address(
    session_factory: sessionmaker[Session], tmp_path: Path, env: str
) -> None:
    client = app_for(env, session_factory, tmp_path)

    statuses = [client.get("/api/tags").status_int for _ in range(400)]
    for n in range(12):  # over production's 5 registrations and 10 logins a minute
        token = client.post_json("/api/users", registration(n)).json["user"]["token"]
        login = {"user": {"email": f"user{n}@x.org", "password": "password1"}}
        statuses.append(client.post_json("/api/users/login", login).status_int)
        article = {"article": {"title": f"T{n}", "description": "d", "body": "b"}}
        statuses.append(
            client.post_json("/api/articles", article, headers={"Authorization": f"Token {token}"}).status_int
        )

    assert set(statuses) == {200, 201}
