"""Rate limiting and caching through the whole app, on their default host-local storages."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker
from webtest import TestApp

from service.app import create_app
from service.db import Database
from tests.conftest import make_settings
from tests.factories import auth_header, make_article, make_user


@pytest.fixture(params=["sqlitefile", "filesystem"])
def full(session_factory: sessionmaker[Session], tmp_path: Path, request: pytest.FixtureRequest) -> TestApp:
    """The app with host-local shared storages: a SQLite counter file and a file-backed cache."""
    settings = make_settings(
        instance_path=tmp_path, ratelimit_enabled=True, cache_url=request.param, ratelimit_login="3/minute"
    )
    return TestApp(create_app(settings, database=Database(session_factory)))


def test_repeated_logins_get_429_in_the_realworld_shape_with_cors(full: TestApp) -> None:
    body = {"user": {"email": "someone@x.org", "password": "guess-guess"}}
    for _ in range(3):
        full.post_json("/api/users/login", body, status=401)

    refused = full.post_json("/api/users/login", body, headers={"Origin": "https://app.example"}, status=429)

    assert refused.json["errors"]["login"][0].startswith("too many attempts from this address; try again in")
    assert refused.headers["Retry-After"] and refused.headers["Access-Control-Allow-Origin"] == "*"


def test_reads_after_writes_are_fresh_through_the_cache(full: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")
    make_article(db, jake)
    assert full.get("/api/articles").json["articlesCount"] == 1
    full.get("/api/articles")  # the second miss in this worker stores the answer (min uses 2)
    assert full.get("/api/articles").headers["X-Cache"] == "hit"

    full.post_json(
        "/api/articles",
        {"article": {"title": "New", "description": "d", "body": "b"}},
        headers=auth_header(jake),
        status=201,
    )

    fresh = full.get("/api/articles")
    assert fresh.json["articlesCount"] == 2 and fresh.headers["X-Cache"] == "miss"


def test_conditional_get_returns_304_without_a_body(full: TestApp) -> None:
    etag = full.get("/api/tags").headers["ETag"]

    assert full.get("/api/tags", headers={"If-None-Match": etag}, status=304).body == b""


def test_forwarded_for_is_ignored_unless_proxies_are_trusted(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    def app(hops: int) -> TestApp:
        settings = make_settings(
            instance_path=tmp_path / str(hops),
            ratelimit_enabled=True,
            ratelimit_default="1/minute",
            trusted_proxy_hops=hops,
        )
        return TestApp(create_app(settings, database=Database(session_factory)))

    untrusting, trusting = app(0), app(1)
    untrusting.get("/api/tags", headers={"X-Forwarded-For": "1.1.1.1"})
    trusting.get("/api/tags", headers={"X-Forwarded-For": "1.1.1.1"})

    # A client cannot dodge the limit by inventing addresses...
    untrusting.get("/api/tags", headers={"X-Forwarded-For": "2.2.2.2"}, status=429)
    # ...but behind a trusted proxy, each forwarded client has its own allowance.
    trusting.get("/api/tags", headers={"X-Forwarded-For": "2.2.2.2"}, status=200)


@pytest.mark.parametrize("path", ["/api/tags", "/api/articles/a-title", "/api/profiles/jake", "/api/articles?tag=t"])
def test_anonymous_heads_never_blank_the_cached_answer(full: TestApp, db: Session, path: str) -> None:
    make_article(db, make_user(db, "jake"), title="A title", tags=["t"], slug="a-title")
    for _ in range(8):
        full.head(path)

    after = full.get(path)

    assert after.body and after.headers["Content-Length"] == str(len(after.body))
    assert after.json == full.get(path, headers={"Cache-Control": "no-cache"}).json


def test_repeated_tag_parameters_answer_for_their_first_value_through_the_cache(full: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")
    make_article(db, jake, title="About a", tags=["a"])
    make_article(db, jake, title="About b", tags=["b"])
    for _ in range(3):
        full.get("/api/articles?tag=a&tag=b")

    reordered = full.get("/api/articles?tag=b&tag=a")

    assert [a["title"] for a in reordered.json["articles"]] == ["About b"]


def test_a_hit_is_sent_as_its_miss_was(full: TestApp, db: Session) -> None:
    make_article(db, make_user(db, "jake"))
    misses = [full.get("/api/articles") for _ in range(2)]  # the second miss in this worker stores the answer
    hit = full.get("/api/articles")

    assert [m.headers["X-Cache"] for m in misses] == ["miss", "miss"] and hit.headers["X-Cache"] == "hit"
    assert hit.body == misses[-1].body
    sent = {name: value for name, value in misses[-1].headerlist if name not in ("X-Cache", "X-Request-ID")}
    assert {name: value for name, value in hit.headerlist if name not in ("X-Cache", "X-Request-ID")} == sent
    full.get("/api/articles", headers={"If-None-Match": hit.headers["ETag"]}, status=304)
