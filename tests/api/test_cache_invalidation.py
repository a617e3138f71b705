"""Through the whole app: each kind of write forgets the cached pages it changes, and no others."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker
from webtest import TestApp

from service.app import create_app
from service.db import Database
from tests.conftest import make_settings
from tests.factories import auth_header, make_article, make_comment, make_user


@pytest.fixture
def cached(session_factory: sessionmaker[Session], tmp_path: Path) -> TestApp:
    """The app with the default host-local cache, storing from the first miss."""
    settings = make_settings(instance_path=tmp_path, cache_url="sqlitefile", cache_min_uses=1)
    return TestApp(create_app(settings, database=Database(session_factory)))


#: A small site: jake wrote "one" (tag a) and "two" (tag b); anne wrote "three" (tag a).
PAGES = (
    "/api/articles",
    "/api/articles?offset=1",
    "/api/articles?tag=a",
    "/api/articles?tag=b",
    "/api/articles?author=jake",
    "/api/articles?author=anne",
    "/api/articles?favorited=anne",
    "/api/articles?favorited=jake",
    "/api/articles/one",
    "/api/articles/two",
    "/api/articles/three",
    "/api/articles/one/comments",
    "/api/articles/two/comments",
    "/api/articles/three/comments",
    "/api/profiles/jake",
    "/api/profiles/anne",
    "/api/tags",
)


@pytest.fixture
def site(db: Session) -> dict[str, dict[str, str]]:
    jake, anne = make_user(db, "jake"), make_user(db, "anne")
    one = make_article(db, jake, title="One", slug="one", tags=["a"])
    make_article(db, jake, title="Two", slug="two", tags=["b"])
    make_article(db, anne, title="Three", slug="three", tags=["a"])
    make_comment(db, one, anne)
    return {"jake": auth_header(jake), "anne": auth_header(anne)}


def warm(app: TestApp) -> dict[str, bytes]:
    """Every page read twice, so that each is stored; their bodies."""
    for page in PAGES:
        app.get(page, status=200)
    return {page: app.get(page, status=200).body for page in PAGES}


def forgotten_after(app: TestApp, write: object) -> set[str]:
    """The pages a write made the cache forget; every page read after it must show the write."""
    before = warm(app)
    assert callable(write)
    write()
    after = {page: app.get(page, expect_errors=True) for page in PAGES}
    fresh = {page: app.get(f"{page}{'&' if '?' in page else '?'}fresh=1", expect_errors=True).body for page in PAGES}
    assert {page: r.body for page, r in after.items()} == fresh, "a page left out the write"
    missed = {page for page, r in after.items() if r.headers.get("X-Cache") != "hit"}
    assert {page for page in PAGES if after[page].body != before[page]} <= missed
    return missed


def test_a_favorite_forgets_the_article_the_lists_holding_it_and_the_favoriters_lists(
    cached: TestApp, site: dict[str, dict[str, str]]
) -> None:
    forgotten = forgotten_after(cached, lambda: cached.post("/api/articles/one/favorite", headers=site["anne"]))

    assert forgotten == {
        "/api/articles",
        "/api/articles?offset=1",  # newest first: three, two, one
        "/api/articles?tag=a",
        "/api/articles?author=jake",
        "/api/articles?favorited=anne",  # its membership
        "/api/articles/one",
    }


def test_a_comment_forgets_only_its_articles_comments_page(cached: TestApp, site: dict[str, dict[str, str]]) -> None:
    comment = {"comment": {"body": "Nice"}}

    forgotten = forgotten_after(
        cached, lambda: cached.post_json("/api/articles/two/comments", comment, headers=site["anne"])
    )

    assert forgotten == {"/api/articles/two/comments"}


def test_deleting_a_comment_forgets_only_its_articles_comments_page(
    cached: TestApp, site: dict[str, dict[str, str]]
) -> None:
    made = cached.post_json("/api/articles/two/comments", {"comment": {"body": "x"}}, headers=site["anne"]).json
    path = f"/api/articles/two/comments/{made['comment']['id']}"

    forgotten = forgotten_after(cached, lambda: cached.delete(path, headers=site["anne"], status=204))

    assert forgotten == {"/api/articles/two/comments"}


def test_an_edit_that_renames_an_article_forgets_its_pages_and_the_lists_showing_it(
    cached: TestApp, site: dict[str, dict[str, str]]
) -> None:
    before = warm(cached)

    cached.put_json("/api/articles/two", {"article": {"title": "Two, again"}}, headers=site["jake"])

    # The old URLs answer 404 from now on (never from the cache); every other page is as before or fresh.
    after = {page: cached.get(page, expect_errors=True) for page in PAGES}
    missed = {page for page, r in after.items() if r.headers.get("X-Cache") != "hit"}
    assert after["/api/articles/two"].status_int == after["/api/articles/two/comments"].status_int == 404
    assert missed == {
        "/api/articles",
        "/api/articles?offset=1",
        "/api/articles?tag=b",
        "/api/articles?author=jake",
        "/api/articles/two",
        "/api/articles/two/comments",
    }
    assert all(after[page].body == before[page] for page in PAGES if page not in missed)


def test_an_edit_of_the_tags_forgets_the_tag_lists_it_enters_and_leaves_and_the_tags_page(
    cached: TestApp, site: dict[str, dict[str, str]]
) -> None:
    edit = {"article": {"tagList": ["c"]}}

    forgotten = forgotten_after(cached, lambda: cached.put_json("/api/articles/two", edit, headers=site["jake"]))

    assert {"/api/articles?tag=b", "/api/tags", "/api/articles/two"} <= forgotten
    assert not forgotten & {"/api/articles?tag=a", "/api/articles/one", "/api/articles/three", "/api/profiles/jake"}


def test_an_edit_of_the_body_leaves_the_tags_page_and_other_articles_cached(
    cached: TestApp, site: dict[str, dict[str, str]]
) -> None:
    edit = {"article": {"body": "New body"}}

    forgotten = forgotten_after(cached, lambda: cached.put_json("/api/articles/two", edit, headers=site["jake"]))

    assert "/api/articles/two" in forgotten
    assert not forgotten & {"/api/tags", "/api/articles?tag=a", "/api/articles/one", "/api/articles/three/comments"}


def test_publishing_forgets_the_lists_it_enters_and_nothing_else(
    cached: TestApp, site: dict[str, dict[str, str]]
) -> None:
    article = {"article": {"title": "Four", "description": "d", "body": "b", "tagList": ["b"]}}

    forgotten = forgotten_after(cached, lambda: cached.post_json("/api/articles", article, headers=site["anne"]))

    assert forgotten == {"/api/articles", "/api/articles?offset=1", "/api/articles?tag=b", "/api/articles?author=anne"}


def test_deleting_an_article_forgets_its_pages_and_every_list_it_leaves(
    cached: TestApp, site: dict[str, dict[str, str]]
) -> None:
    cached.post("/api/articles/three/favorite", headers=site["jake"])

    forgotten = forgotten_after(cached, lambda: cached.delete("/api/articles/three", headers=site["anne"], status=204))

    assert {
        "/api/articles",
        "/api/articles?tag=a",
        "/api/articles?author=anne",
        "/api/articles?favorited=jake",
    } <= forgotten
    assert not forgotten & {
        "/api/articles?tag=b",
        "/api/articles/one",
        "/api/articles/two/comments",
        "/api/profiles/jake",
    }


def test_a_profile_edit_forgets_every_page_showing_that_author_and_no_other(
    cached: TestApp, site: dict[str, dict[str, str]]
) -> None:
    edit = {"user": {"bio": "Writes about trees"}}

    forgotten = forgotten_after(cached, lambda: cached.put_json("/api/user", edit, headers=site["anne"]))

    assert forgotten == {
        "/api/profiles/anne",
        "/api/articles",  # shows "three" by anne (not "?offset=1": two and one, by jake)
        "/api/articles?tag=a",
        "/api/articles?author=anne",
        "/api/articles/three",
        "/api/articles/one/comments",  # anne's comment
    }


@pytest.mark.parametrize("kind", ["login", "register", "follow", "unfollow", "logout", "password"])
def test_writes_that_change_nothing_shared_forget_nothing(
    cached: TestApp, site: dict[str, dict[str, str]], kind: str
) -> None:
    writes = {
        "login": lambda: cached.post_json(
            "/api/users/login", {"user": {"email": "jake@example.com", "password": "x"}}, expect_errors=True
        ),
        "register": lambda: cached.post_json(
            "/api/users", {"user": {"username": "zed", "email": "zed@example.com", "password": "password1"}}
        ),
        "follow": lambda: cached.post("/api/profiles/jake/follow", headers=site["anne"]),
        "unfollow": lambda: cached.delete("/api/profiles/jake/follow", headers=site["anne"]),
        "logout": lambda: cached.post("/api/user/logout", headers=site["anne"], status=204),
        "password": lambda: cached.put_json("/api/user", {"user": {"password": "another1"}}, headers=site["anne"]),
    }

    assert forgotten_after(cached, writes[kind]) == set()


def test_every_write_declares_the_kinds_of_key_it_changes(
    cached: TestApp, site: dict[str, dict[str, str]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="service.dispatch")
    jake = site["jake"]
    made = cached.post_json(
        "/api/articles", {"article": {"title": "X", "description": "d", "body": "b", "tagList": ["z"]}}, headers=jake
    ).json["article"]["slug"]
    cached.post(f"/api/articles/{made}/favorite", headers=jake)
    cached.delete(f"/api/articles/{made}/favorite", headers=jake)
    comment = cached.post_json(f"/api/articles/{made}/comments", {"comment": {"body": "c"}}, headers=jake).json
    cached.delete(f"/api/articles/{made}/comments/{comment['comment']['id']}", headers=jake, status=204)
    renamed = cached.put_json(
        f"/api/articles/{made}", {"article": {"title": "Y", "tagList": ["w"]}}, headers=jake
    ).json["article"]["slug"]
    cached.put_json("/api/user", {"user": {"username": "jacob", "bio": "b"}}, headers=jake)
    cached.delete(f"/api/articles/{renamed}", headers=jake, status=204)

    assert [r.getMessage() for r in caplog.records if "does not declare" in r.getMessage()] == []


@pytest.mark.parametrize(
    ("first", "second"),
    [("%FF", "%EF%BF%BD"), ("%ff", "%EF%BF%BD"), ("a%20b", "a%2520b"), ("%C3%A9", "%25C3%25A9")],
)
def test_one_cache_entry_never_answers_two_different_filters(
    cached: TestApp, db: Session, first: str, second: str
) -> None:
    """The key is built from the values the view receives: an invalid escape is not U+FFFD."""
    jake = make_user(db, "jake")
    for raw in (first, second):
        make_article(db, jake, title=f"Tagged {raw}", tags=[_as_view_reads(raw)])
    for _ in range(3):
        cached.get(f"/api/articles?tag={first}")

    answer = cached.get(f"/api/articles?tag={second}")

    assert answer.headers["X-Cache"] == "miss"
    assert [a["title"] for a in answer.json["articles"]] == [f"Tagged {second}"]


def _as_view_reads(raw: str) -> str:
    """The tag value werkzeug hands the view for ``?tag=<raw>`` (invalid UTF-8 stays percent-encoded)."""
    from werkzeug.wrappers import Request  # the same parsing as the view's

    return str(Request({"QUERY_STRING": f"tag={raw}", "REQUEST_METHOD": "GET"}).args["tag"])


@pytest.mark.parametrize(("stored", "asked"), [("a%20b", "a+b"), ("%c3%a9", "%C3%A9")])
def test_spellings_of_one_filter_share_one_entry(cached: TestApp, db: Session, stored: str, asked: str) -> None:
    for _ in range(2):
        cached.get(f"/api/articles?tag={stored}")

    assert cached.get(f"/api/articles?tag={asked}").headers["X-Cache"] == "hit"
