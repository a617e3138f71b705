"""Tokens that must stop working: after a password change, a sign-out everywhere, a deleted account."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest
from sqlalchemy import delete
from sqlalchemy.orm import Session
from webtest import TestApp

from service.db import Database
from service.models import User
from tests.conftest import TEST_SECRET
from tests.factories import PASSWORD, auth_header, make_user, token_for


def token_header(token: str) -> dict[str, str]:
    return {"Authorization": f"Token {token}"}


def register(client: TestApp, name: str) -> str:
    user = {"username": name, "email": f"{name}@x.org", "password": "password1"}
    return str(client.post_json("/api/users", {"user": user}, status=201).json["user"]["token"])


def test_a_deleted_users_token_never_signs_in_the_next_account(client: TestApp, db: Session) -> None:
    old_token = register(client, "leaving")
    db.execute(delete(User).where(User.username == "leaving"))  # what `conduit users delete` does
    db.commit()
    register(client, "arriving")  # on SQLite without AUTOINCREMENT, this account got the deleted id

    refused = client.get("/api/user", headers=token_header(old_token), status=401)

    assert refused.json == {"errors": {"token": ["is invalid"]}}


def test_a_password_change_keeps_the_token_that_made_it_and_the_one_it_returns_and_revokes_every_other(
    client: TestApp, db: Session
) -> None:
    jake = make_user(db, "jake")
    mine = auth_header(jake)
    stolen = token_header(token_for(jake, now=datetime.now(UTC) - timedelta(minutes=5)))

    changed = client.put_json("/api/user", {"user": {"password": "a-new-password"}}, headers=mine)

    for path in ("/api/user", "/api/articles/feed", "/api/articles", "/api/profiles/jake"):
        client.get(path, headers=stolen, status=401)
        client.get(path, headers=mine, status=200)
        client.get(path, headers=token_header(changed.json["user"]["token"]), status=200)
    client.put_json("/api/user", {"user": {"bio": "b"}}, headers=stolen, status=401)
    assert client.put_json("/api/user", {"user": {"bio": "mine"}}, headers=mine).json["user"]["bio"] == "mine"


def test_two_logins_in_the_same_second_are_two_sessions_and_a_password_change_keeps_only_its_own(
    client: TestApp, db: Session
) -> None:
    # Once the same token (no jti): "keep the session that changed the password" kept both (issue 34).
    jake = make_user(db, "jake")
    same_second = datetime.now(UTC).replace(microsecond=0)
    mine, other = (token_header(token_for(jake, now=same_second)) for _ in range(2))
    login = {"user": {"email": jake.email, "password": PASSWORD}}
    logins = {client.post_json("/api/users/login", login).json["user"]["token"] for _ in range(2)}
    assert mine != other and len(logins) == 2

    client.put_json("/api/user", {"user": {"password": "a-new-password"}}, headers=mine)

    client.get("/api/user", headers=mine, status=200)
    client.get("/api/user", headers=other, status=401)
    for token in logins:
        client.get("/api/user", headers=token_header(token), status=401)


def test_a_second_password_change_from_another_session_revokes_the_token_the_first_kept(
    client: TestApp, db: Session
) -> None:
    jake = make_user(db, "jake")
    first = auth_header(jake)
    changed = client.put_json("/api/user", {"user": {"password": "a-new-password"}}, headers=first)
    second = token_header(changed.json["user"]["token"])

    client.put_json("/api/user", {"user": {"password": "yet-another-one"}}, headers=second)

    client.get("/api/user", headers=first, status=401)
    client.get("/api/user", headers=second, status=200)


@pytest.mark.parametrize("change", [{"username": "jacob"}, {"email": "jacob@x.org"}, {"bio": "b"}, {"image": "i"}])
def test_other_account_changes_keep_tokens_working(client: TestApp, db: Session, change: dict[str, str]) -> None:
    jake = make_user(db, "jake")
    old = auth_header(jake)

    client.put_json("/api/user", {"user": change}, headers=old)

    assert client.get("/api/user", headers=old).status_int == 200


def test_logout_signs_the_user_out_everywhere(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")
    here, elsewhere = (
        auth_header(jake),
        token_header(
            client.post_json("/api/users/login", {"user": {"email": jake.email, "password": PASSWORD}}).json["user"][
                "token"
            ]
        ),
    )

    done = client.post("/api/user/logout", headers=here, status=204)

    assert done.body == b""
    client.get("/api/user", headers=here, status=401)
    client.get("/api/user", headers=elsewhere, status=401)
    fresh = client.post_json("/api/users/login", {"user": {"email": jake.email, "password": PASSWORD}})
    assert client.get("/api/user", headers=token_header(fresh.json["user"]["token"])).status_int == 200


def test_logout_without_a_token_returns_401(client: TestApp) -> None:
    assert client.post("/api/user/logout", status=401).json == {"errors": {"token": ["is missing"]}}


@pytest.mark.parametrize("sub", [str(2**31), str(2**31 - 1), "99999999999"])
def test_a_signed_token_for_an_id_no_row_can_have_is_401(client: TestApp, db: Session, sub: str) -> None:
    # Correctly signed, so only the claim's shape or the lookup can refuse it (was a 500 on PostgreSQL).
    token = jwt.encode({"sub": sub, "stamp": "0123456789abcdef", "iat": 1, "exp": 4_000_000_000}, TEST_SECRET)

    assert client.get("/api/user", headers=token_header(token), status=401).json == {
        "errors": {"token": ["is invalid"]}
    }


def test_a_token_is_decoded_once_per_request_though_the_limiter_and_the_dispatcher_both_read_it(
    session_factory: object, db: Session, tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service import auth
    from service.app import create_app
    from tests.conftest import make_settings

    jake = make_user(db, "jake")
    client = TestApp(
        create_app(make_settings(instance_path=tmp_path, ratelimit_enabled=True), database=Database(session_factory))  # type: ignore[arg-type]
    )
    decoded: list[str] = []
    real_decode = auth.jwt.decode
    monkeypatch.setattr(auth.jwt, "decode", lambda *args, **kwargs: decoded.append("x") or real_decode(*args, **kwargs))

    client.get("/api/user", headers=auth_header(jake))

    assert decoded == ["x"]
