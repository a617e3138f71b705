"""Signed-in reads share the cached anonymous answer; the viewer's flags come fresh from one small query."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker
from webtest import TestApp

from service.app import create_app
from service.db import Database
from tests.conftest import make_settings
from tests.factories import auth_header, favorite, follow, make_article, make_user, token_for
from tests.integration.test_query_counts import counting


@pytest.fixture
def cached(session_factory: sessionmaker[Session], tmp_path: Path) -> TestApp:
    """The app with the default host-local cache, storing from the first miss."""
    settings = make_settings(instance_path=tmp_path, cache_url="sqlitefile", cache_min_uses=1)
    return TestApp(create_app(settings, database=Database(session_factory)))


def test_a_signed_in_read_of_a_cached_page_is_one_statement_and_shows_the_viewers_flags(
    cached: TestApp, db: Session, session_factory: sessionmaker[Session]
) -> None:
    jake, anne = make_user(db, "jake"), make_user(db, "anne")
    liked = make_article(db, anne, title="Liked")
    make_article(db, anne, title="Other")
    cached.get("/api/articles")  # the anonymous answer is stored
    favorite(db, jake, liked)  # written behind the cache's back: nothing forgotten, so the page stays cached
    follow(db, jake, anne)

    with counting(session_factory) as seen:
        page = cached.get("/api/articles", headers=auth_header(jake))

    assert page.headers["X-Cache"] == "hit" and len(seen) == 1
    flags = {a["title"]: (a["favorited"], a["author"]["following"]) for a in page.json["articles"]}
    assert flags == {"Liked": (True, True), "Other": (False, True)}
    assert page.headers["Cache-Control"] == "private, no-cache"


@pytest.mark.parametrize("path", ["/api/articles/liked", "/api/articles/liked/comments", "/api/profiles/anne"])
def test_every_shared_resource_is_personalised_on_a_hit(cached: TestApp, db: Session, path: str) -> None:
    jake, anne = make_user(db, "jake"), make_user(db, "anne")
    make_article(db, anne, title="Liked", slug="liked")
    cached.get(path)
    follow(db, jake, anne)

    personal = cached.get(path, headers=auth_header(jake))

    assert personal.headers["X-Cache"] == "hit"
    assert '"following":true' in personal.text or path.endswith("comments")


def test_own_favorite_and_follow_through_the_api_show_in_the_next_reads(cached: TestApp, db: Session) -> None:
    jake, anne = make_user(db, "jake"), make_user(db, "anne")
    make_article(db, anne, title="Liked", slug="liked")
    cached.get("/api/articles/liked", headers=auth_header(jake))

    cached.post("/api/articles/liked/favorite", headers=auth_header(jake))
    cached.post("/api/profiles/anne/follow", headers=auth_header(jake))
    first = cached.get("/api/articles/liked", headers=auth_header(jake))
    second = cached.get("/api/articles/liked", headers=auth_header(jake))

    assert [r.headers["X-Cache"] for r in (first, second)] == ["miss", "hit"]
    for read in (first, second):
        article = read.json["article"]
        assert (article["favorited"], article["favoritesCount"], article["author"]["following"]) == (True, 1, True)


def test_what_a_signed_in_miss_stores_is_the_anonymous_answer(cached: TestApp, db: Session) -> None:
    jake, anne = make_user(db, "jake"), make_user(db, "anne")
    favorite(db, jake, make_article(db, anne, title="Liked", slug="liked"))
    follow(db, jake, anne)
    personal = cached.get("/api/articles/liked", headers=auth_header(jake))

    shared = cached.get("/api/articles/liked")

    assert personal.headers["X-Cache"] == "miss" and shared.headers["X-Cache"] == "hit"
    assert (personal.json["article"]["favorited"], shared.json["article"]["favorited"]) == (True, False)
    assert shared.json["article"]["author"]["following"] is False
    assert shared.headers["Cache-Control"] == "no-cache"


def test_a_revoked_token_is_refused_on_a_cached_page(cached: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")
    old = auth_header(jake)
    cached.get("/api/tags")
    cached.get("/api/articles")
    cached.post("/api/user/logout", headers=old, status=204)
    cached.get("/api/articles")  # still cached: a logout changes nothing shared

    refused = cached.get("/api/articles", headers=old, status=401)

    assert refused.json == {"errors": {"token": ["is invalid"]}}


def test_after_a_password_change_the_session_that_made_it_reads_cached_pages_and_no_other_does(
    cached: TestApp, db: Session
) -> None:
    jake = make_user(db, "jake")
    mine = auth_header(jake)
    other = {"Authorization": f"Token {token_for(jake, now=datetime.now(UTC) - timedelta(minutes=5))}"}
    for _ in range(2):
        cached.get("/api/articles")  # stored

    cached.put_json("/api/user", {"user": {"password": "a-new-password"}}, headers=mine)

    assert cached.get("/api/articles", headers=mine).headers["X-Cache"] == "hit"
    assert cached.get("/api/articles", headers=other, status=401).headers["X-Cache"] == "hit"


@pytest.mark.parametrize(
    ("first", "then"),
    [
        ("/api/articles/one", "/api/articles/one?utm=2"),
        ("/api/articles/one?utm=1", "/api/articles/one?utm=2&ref=x"),
        ("/api/articles?tag=t&utm=1", "/api/articles?utm=2&tag=t"),
        ("/api/articles/one/comments?page=1", "/api/articles/one/comments"),
        ("/api/profiles/anne?x=1", "/api/profiles/anne?x=2"),
        ("/api/tags?_=1", "/api/tags?_=2"),
    ],
)
def test_urls_that_differ_only_in_parameters_the_route_does_not_read_share_one_entry(
    cached: TestApp, db: Session, first: str, then: str
) -> None:
    # 300 URLs of one article under ?utm=N made 300 entries and grew the cache past its bound (issue 34).
    make_article(db, make_user(db, "anne"), title="One", slug="one", tags=["t"])

    stored = cached.get(first)

    assert stored.headers["X-Cache"] == "miss"
    assert cached.get(then).headers["X-Cache"] == "hit"
    assert cached.get(then).body == stored.body


def test_a_parameter_the_route_reads_still_makes_its_own_entry(cached: TestApp, db: Session) -> None:
    make_article(db, make_user(db, "anne"), title="One", slug="one", tags=["t"])
    cached.get("/api/articles?tag=t&utm=1")

    assert cached.get("/api/articles?tag=u&utm=1").headers["X-Cache"] == "miss"
    assert cached.get("/api/articles?tag=t&limit=1").headers["X-Cache"] == "miss"
