"""The error contract: every failure is a RealWorld JSON body with the right status."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from sqlalchemy.orm import Session, sessionmaker
from webtest import TestApp

from service import route_table
from service.app import create_app
from service.db import Database
from service.router import Route
from tests.conftest import TEST_SECRET, make_settings, routes_with
from tests.factories import auth_header, make_user, token_for

PROTECTED = [r for r in route_table.ROUTES if r.auth == "required"]
OPTIONAL = [r for r in route_table.ROUTES if r.auth == "optional"]


def concrete(route: Route) -> str:
    """The route's path with sample values, under /api."""
    path = route.path.replace("<username>", "jake").replace("<slug>", "some-slug")
    return "/api" + path.replace(route_table._COMMENT_ID, "1")


def call(client: TestApp, route: Route, **kwargs: object) -> object:
    method = getattr(client, route.method.lower() + ("_json" if route.body else ""))
    if route.body:
        return method(concrete(route), {}, **kwargs)
    return method(concrete(route), **kwargs)


@pytest.mark.parametrize("route", PROTECTED, ids=lambda r: r.endpoint)
def test_protected_route_without_token_returns_401_is_missing(client: TestApp, route: Route) -> None:
    response = call(client, route, status=401)

    assert response.json == {"errors": {"token": ["is missing"]}}  # type: ignore[attr-defined]


def _tokens() -> dict[str, str]:
    now = datetime.now(UTC)
    good = {"sub": "1", "iat": now, "exp": now + timedelta(hours=1)}
    valid = jwt.encode(good, TEST_SECRET, algorithm="HS256")
    head, _, sig = valid.split(".")
    forged_payload = jwt.encode({**good, "sub": "2"}, "x" * 32, algorithm="HS256").split(".")[1]
    return {
        "garbage": "not-a-jwt",
        "tampered payload": f"{head}.{forged_payload}.{sig}",
        "wrong secret": jwt.encode(good, "another-secret-another-secret-another", algorithm="HS256"),
        "alg none": jwt.encode(good, None, algorithm="none"),
        "wrong algorithm": jwt.encode(good, TEST_SECRET + "-padding-for-hs512-0123456789abcdef", algorithm="HS512"),
        "no exp": jwt.encode({"sub": "1", "iat": now}, TEST_SECRET, algorithm="HS256"),
        "non-numeric sub": jwt.encode({**good, "sub": "jake"}, TEST_SECRET, algorithm="HS256"),
        "unknown user": jwt.encode({**good, "sub": "987654"}, TEST_SECRET, algorithm="HS256"),
    }


@pytest.mark.parametrize("kind", list(_tokens()))
def test_bad_token_returns_401_is_invalid(client: TestApp, db: Session, kind: str) -> None:
    make_user(db, "jake")

    body = client.get("/api/user", headers={"Authorization": f"Token {_tokens()[kind]}"}, status=401).json

    assert body == {"errors": {"token": ["is invalid"]}}


def test_expired_token_returns_401_has_expired(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")
    token = token_for(jake, now=datetime.now(UTC) - timedelta(days=30))

    body = client.get("/api/user", headers={"Authorization": f"Token {token}"}, status=401).json

    assert body == {"errors": {"token": ["has expired"]}}


@pytest.mark.parametrize("header", ["Token", "Basic abc", "Token a b", "tokenabc"])
def test_malformed_authorization_header_returns_401_is_invalid(client: TestApp, header: str) -> None:
    body = client.get("/api/user", headers={"Authorization": header}, status=401).json

    assert body == {"errors": {"token": ["is invalid"]}}


def test_bearer_scheme_is_accepted(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")

    response = client.get("/api/user", headers={"Authorization": f"Bearer {token_for(jake)}"})

    assert response.status_int == 200 and response.json["user"]["username"] == "jake"


@pytest.mark.parametrize("route", OPTIONAL, ids=lambda r: r.endpoint)
def test_bad_token_on_optional_route_returns_401(client: TestApp, route: Route) -> None:
    body = call(client, route, headers={"Authorization": "Token not-a-jwt"}, status=401)

    assert body.json == {"errors": {"token": ["is invalid"]}}  # type: ignore[attr-defined]


def test_malformed_json_returns_400(client: TestApp) -> None:
    body = client.post("/api/users", b'{"user": ', content_type="application/json", status=400).json

    assert body == {"errors": {"body": ["is not valid JSON"]}}


def test_deeply_nested_json_returns_400_not_500(client: TestApp) -> None:
    client.post("/api/users", b"[" * 100_000, content_type="application/json", status=400)


def test_invalid_utf8_returns_400(client: TestApp) -> None:
    client.post("/api/users", b'{"user": "\xff"}', content_type="application/json", status=400)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_non_json_content_type_returns_415(client: TestApp, content_type: str) -> None:
    body = client.post("/api/users", b'{"user": {}}', content_type=content_type, status=415).json

    assert body == {"errors": {"body": ["must be JSON (Content-Type: application/json)"]}}


@pytest.mark.parametrize(
    ("payload", "errors"),
    [
        ({}, {"user": ["can't be blank"]}),
        ([], {"body": ["must be an object"]}),
        ("user", {"body": ["must be an object"]}),
        (None, {"body": ["must be an object"]}),
        ({"user": None}, {"user": ["can't be blank"]}),
        ({"user": []}, {"user": ["must be an object"]}),
    ],
)
def test_missing_or_wrong_wrapper_returns_422(client: TestApp, payload: object, errors: dict) -> None:
    assert client.post_json("/api/users", payload, status=422).json == {"errors": errors}


def test_body_over_the_limit_returns_413(app: object, session_factory: sessionmaker[Session]) -> None:
    small = TestApp(create_app(make_settings(max_body_bytes=1024), database=Database(session_factory)))

    body = small.post_json("/api/users", {"user": {"username": "x" * 2000}}, status=413).json

    assert body == {"errors": {"body": ["is too large"]}}


def test_unknown_route_returns_404_json(client: TestApp) -> None:
    response = client.get("/api/nothing/here", status=404)

    assert response.json == {"errors": {"resource": ["not found"]}}
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"


def test_wrong_method_returns_405_with_allow(client: TestApp) -> None:
    response = client.patch("/api/articles", status=405)

    assert response.json == {"errors": {"method": ["not allowed"]}}
    assert set(response.headers["Allow"].split(", ")) == {"GET", "POST"}


def test_trailing_slash_is_tolerated(client: TestApp) -> None:
    assert client.get("/api/tags/").json == {"tags": []}


def test_nul_in_path_returns_404_not_500(client: TestApp) -> None:
    client.get("/api/profiles/ja%00ke", status=404)


def test_unexpected_error_is_a_500_json_without_details(
    session_factory: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    def explode(request: object) -> None:
        raise RuntimeError("secret internal detail")

    app = create_app(make_settings(), routes=routes_with("tags.get_tags", explode), database=Database(session_factory))

    with caplog.at_level(logging.ERROR, logger="service.dispatch"):
        response = TestApp(app).get("/api/tags", status=500)

    assert response.json == {"errors": {"server": ["internal error"]}}
    assert "secret internal detail" not in response.text
    assert "secret internal detail" in caplog.text  # logged once, with its traceback


def test_cors_preflight_is_answered(client: TestApp) -> None:
    response = client.options(
        "/api/articles",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
        status=204,
    )

    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]


def test_cors_lets_a_front_end_send_the_conditional_and_idempotent_writes_headers_and_read_the_answers(
    client: TestApp, db: Session
) -> None:
    # A preflight that leaves a header out makes the browser refuse the request (issue 34).
    preflight = client.options(
        "/api/articles/one",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "authorization,content-type,if-match,if-none-match,idempotency-key",
        },
        status=204,
    )
    allowed = {name.strip().lower() for name in preflight.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "if-match", "if-none-match", "idempotency-key"} <= allowed

    me = auth_header(make_user(db, "jake"))
    write = {**me, "Origin": "https://app.example", "Idempotency-Key": "k1"}
    client.put_json("/api/user", {"user": {"bio": "b"}}, headers=write)
    replay = client.put_json("/api/user", {"user": {"bio": "b"}}, headers=write)
    exposed = {name.strip().lower() for name in replay.headers["Access-Control-Expose-Headers"].split(",")}
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert {"idempotent-replayed", "etag", "x-request-id", "retry-after", "www-authenticate"} <= exposed


def test_cors_headers_on_simple_requests(client: TestApp) -> None:
    response = client.get("/api/tags", headers={"Origin": "https://app.example"})

    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_cors_refuses_an_origin_outside_the_list(session_factory: sessionmaker[Session]) -> None:
    app = TestApp(create_app(make_settings(cors_origins=("https://good.example",)), database=Database(session_factory)))

    good = app.get("/api/tags", headers={"Origin": "https://good.example"})
    bad = app.get("/api/tags", headers={"Origin": "https://evil.example"})

    assert good.headers["Access-Control-Allow-Origin"] == "https://good.example"
    assert "Vary" in good.headers
    assert "Access-Control-Allow-Origin" not in bad.headers


def test_authentication_comes_before_existence_and_ownership(client: TestApp, db: Session) -> None:
    other = make_user(db, "other")

    client.put_json("/api/articles/nope", {"article": {}}, status=401)
    client.put_json("/api/articles/nope", {"article": {}}, headers=auth_header(other), status=404)
