"""Registration, login, current user and its update."""

from __future__ import annotations

import jwt
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from webtest import TestApp

from service.models import User
from tests.conftest import TEST_SECRET
from tests.factories import PASSWORD, auth_header, make_user


def register(client: TestApp, status: int = 201, **fields: object) -> dict:
    user = {"username": "jake", "email": "jake@jake.jake", "password": "jakejake1"}
    user.update(fields)
    return client.post_json("/api/users", {"user": user}, status=status).json


def test_create_user_returns_201_with_user_and_token(client: TestApp) -> None:
    body = register(client)

    assert set(body) == {"user"}
    assert body["user"]["username"] == "jake"
    assert body["user"]["email"] == "jake@jake.jake"
    assert body["user"]["bio"] is None and body["user"]["image"] is None
    claims = jwt.decode(body["user"]["token"], TEST_SECRET, algorithms=["HS256"])
    assert claims["sub"].isdecimal() and claims["exp"] > claims["iat"]


def test_create_user_responds_with_json_utf8(client: TestApp) -> None:
    response = client.post_json("/api/users", {"user": {"username": "j", "email": "j@x.org", "password": "12345678"}})

    assert response.headers["Content-Type"] == "application/json; charset=utf-8"


def test_create_user_stores_an_argon2id_hash_not_the_password(client: TestApp, db: Session) -> None:
    register(client)

    user = db.scalars(select(User)).one()
    assert user.password_hash.startswith("$argon2id$")
    assert "jakejake1" not in user.password_hash


@pytest.mark.parametrize("field", ["username", "email"])
def test_create_user_with_taken_field_returns_409(client: TestApp, db: Session, field: str) -> None:
    make_user(db, "jake", email="jake@jake.jake")
    other = {"username": "other", "email": "other@x.org"}
    other[field] = {"username": "jake", "email": "jake@jake.jake"}[field]

    body = register(client, status=409, **other)

    assert body == {"errors": {field: ["has already been taken"]}}


def test_create_user_with_taken_email_in_other_case_returns_409(client: TestApp, db: Session) -> None:
    make_user(db, "jake", email="jake@jake.jake")

    body = register(client, status=409, username="other", email="JAKE@Jake.jake")

    assert body == {"errors": {"email": ["has already been taken"]}}


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"username": ""}, {"username": ["can't be blank"]}),
        ({"email": ""}, {"email": ["can't be blank"]}),
        ({"password": ""}, {"password": ["can't be blank"]}),
        ({"username": "   "}, {"username": ["can't be blank"]}),
        ({"username": None}, {"username": ["can't be blank"]}),
        ({"email": "not-an-email"}, {"email": ["is invalid"]}),
        ({"password": "short"}, {"password": ["is too short (minimum is 8 characters)"]}),
        ({"username": 42}, {"username": ["must be a string"]}),
        ({"username": "a/b"}, {"username": ["may only contain letters, digits, '_', '.' and '-'"]}),
        ({"username": "x" * 65}, {"username": ["is too long (maximum is 64 characters)"]}),
        ({"admin": True}, {"admin": ["is not a known field"]}),
        ({"username": "nul\x00"}, {"username": ["must not contain NUL characters"]}),
    ],
)
def test_create_user_with_invalid_field_returns_422(client: TestApp, fields: dict, errors: dict) -> None:
    body = register(client, status=422, **fields)

    assert body == {"errors": errors}


def test_create_user_without_fields_reports_each_as_blank(client: TestApp) -> None:
    body = client.post_json("/api/users", {"user": {}}, status=422).json

    assert body == {"errors": {f: ["can't be blank"] for f in ("username", "email", "password")}}


def test_password_of_exactly_eight_characters_is_accepted(client: TestApp) -> None:
    body = register(client, password="12345678")
    login = {"user": {"email": "jake@jake.jake", "password": "12345678"}}

    assert body["user"]["username"] == "jake"
    assert client.post_json("/api/users/login", login).json["user"]["username"] == "jake"


def test_login_returns_user_with_token(client: TestApp, db: Session) -> None:
    make_user(db, "jake")

    body = client.post_json("/api/users/login", {"user": {"email": "jake@example.org", "password": PASSWORD}}).json

    assert body["user"]["username"] == "jake"
    assert body["user"]["token"]


def test_login_ignores_email_case(client: TestApp, db: Session) -> None:
    make_user(db, "jake")

    response = client.post_json("/api/users/login", {"user": {"email": "Jake@Example.ORG", "password": PASSWORD}})

    assert response.status_int == 200
    assert response.json["user"]["username"] == "jake" and response.json["user"]["email"] == "jake@example.org"


@pytest.mark.parametrize(
    ("email", "password"),
    [("jake@example.org", "wrong password"), ("nobody@example.org", PASSWORD)],
)
def test_login_with_bad_credentials_returns_the_same_401(
    client: TestApp, db: Session, email: str, password: str
) -> None:
    make_user(db, "jake")

    body = client.post_json("/api/users/login", {"user": {"email": email, "password": password}}, status=401).json

    assert body == {"errors": {"credentials": ["invalid"]}}


def test_login_ignores_a_stale_token_in_the_header(client: TestApp, db: Session) -> None:
    # A front end may still send an expired token while its user logs in again.
    make_user(db, "jake")

    response = client.post_json(
        "/api/users/login",
        {"user": {"email": "jake@example.org", "password": PASSWORD}},
        headers={"Authorization": "Token garbage"},
    )

    assert response.status_int == 200
    assert response.json["user"]["username"] == "jake" and response.json["user"]["token"]


def test_login_without_password_returns_422(client: TestApp) -> None:
    body = client.post_json("/api/users/login", {"user": {"email": "jake@example.org"}}, status=422).json

    assert body == {"errors": {"password": ["can't be blank"]}}


def test_get_current_user_returns_the_token_owner(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake", bio="I work at statefarm")

    body = client.get("/api/user", headers=auth_header(jake)).json

    assert body["user"]["username"] == "jake"
    assert body["user"]["bio"] == "I work at statefarm"
    assert body["user"]["token"]


def test_update_current_user_changes_only_sent_fields(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake", bio="old bio", image="https://img/x.png")

    body = client.put_json("/api/user", {"user": {"bio": "new bio"}}, headers=auth_header(jake)).json

    assert body["user"]["bio"] == "new bio"
    assert body["user"]["image"] == "https://img/x.png"
    assert body["user"]["username"] == "jake"
    assert body["user"]["email"] == "jake@example.org"


@pytest.mark.parametrize("value", ["", None])
def test_update_current_user_clears_bio_and_image(client: TestApp, db: Session, value: str | None) -> None:
    jake = make_user(db, "jake", bio="old bio", image="https://img/x.png")

    body = client.put_json("/api/user", {"user": {"bio": value, "image": value}}, headers=auth_header(jake)).json

    assert body["user"]["bio"] is None and body["user"]["image"] is None
    db.expire_all()
    assert db.get(User, jake.id).bio is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"username": ""}, {"username": ["can't be blank"]}),
        ({"username": None}, {"username": ["can't be blank"]}),
        ({"email": ""}, {"email": ["can't be blank"]}),
        ({"email": None}, {"email": ["can't be blank"]}),
        ({"email": "nope"}, {"email": ["is invalid"]}),
        ({"password": "short"}, {"password": ["is too short (minimum is 8 characters)"]}),
        ({"password": None}, {"password": ["can't be blank"]}),
        ({"id": 1}, {"id": ["is not a known field"]}),  # not part of User (an echoed token is ignored)
    ],
)
def test_update_current_user_with_invalid_field_returns_422(
    client: TestApp, db: Session, fields: dict, errors: dict
) -> None:
    jake = make_user(db, "jake")

    body = client.put_json("/api/user", {"user": fields}, headers=auth_header(jake), status=422).json

    assert body == {"errors": errors}


@pytest.mark.parametrize("field", ["username", "email"])
def test_update_current_user_to_anothers_field_returns_409(client: TestApp, db: Session, field: str) -> None:
    jake = make_user(db, "jake")
    make_user(db, "celeb")
    value = {"username": "celeb", "email": "celeb@example.org"}[field]

    body = client.put_json("/api/user", {"user": {field: value}}, headers=auth_header(jake), status=409).json

    assert body == {"errors": {field: ["has already been taken"]}}


def test_update_current_user_to_own_email_is_fine(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")

    response = client.put_json(
        "/api/user", {"user": {"email": "jake@example.org", "username": "jake"}}, headers=auth_header(jake)
    )

    assert response.status_int == 200
    assert (response.json["user"]["email"], response.json["user"]["username"]) == ("jake@example.org", "jake")


def test_update_current_user_password_allows_login_with_the_new_one(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")

    client.put_json("/api/user", {"user": {"password": "a brand new secret"}}, headers=auth_header(jake))

    client.post_json("/api/users/login", {"user": {"email": "jake@example.org", "password": "a brand new secret"}})
    client.post_json("/api/users/login", {"user": {"email": "jake@example.org", "password": PASSWORD}}, status=401)


def test_update_current_user_returns_a_fresh_valid_token(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")

    token = client.put_json("/api/user", {"user": {"username": "jacob"}}, headers=auth_header(jake)).json["user"][
        "token"
    ]

    assert client.get("/api/user", headers={"Authorization": f"Token {token}"}).json["user"]["username"] == "jacob"
