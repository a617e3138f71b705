"""``If-Match`` on writes (RFC 9110 13.1.1): a stale version gets 412, in the RealWorld error shape."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker
from webtest import TestApp

from service.app import create_app
from service.db import Database
from tests.conftest import make_settings
from tests.factories import auth_header, make_article, make_user

STALE = {"errors": {"If-Match": ["does not match the current version"]}}


@pytest.fixture(params=["null", "sqlitefile"])
def app(request: pytest.FixtureRequest, session_factory: sessionmaker[Session], tmp_path: Path) -> TestApp:
    """Without and with the response cache: the ETag of a cached read is one a client can send back."""
    settings = make_settings(instance_path=tmp_path, cache_url=request.param, cache_min_uses=1)
    return TestApp(create_app(settings, database=Database(session_factory)))


def test_an_edit_with_the_current_etag_is_applied_and_a_stale_one_is_refused(app: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")
    make_article(db, jake, title="One", slug="one")
    me = auth_header(jake)
    app.get("/api/articles/one", headers=me)  # stored, with the cache on
    etag = app.get("/api/articles/one", headers=me).headers["ETag"]

    first = app.put_json("/api/articles/one", {"article": {"body": "mine"}}, headers={**me, "If-Match": etag})
    second = app.put_json(
        "/api/articles/one", {"article": {"body": "theirs"}}, headers={**me, "If-Match": etag}, status=412
    )

    assert first.json["article"]["body"] == "mine" and second.json == STALE
    assert app.get("/api/articles/one").json["article"]["body"] == "mine"
    assert app.get("/api/articles/one", headers=me).headers["ETag"] != etag


def test_a_delete_with_a_stale_etag_is_refused_and_with_the_current_one_applied(app: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")
    make_article(db, jake, title="One", slug="one")
    me = auth_header(jake)
    stale = app.get("/api/articles/one", headers=me).headers["ETag"]
    app.put_json("/api/articles/one", {"article": {"description": "changed"}}, headers=me)

    refused = app.delete("/api/articles/one", headers={**me, "If-Match": stale}, status=412)
    app.get("/api/articles/one", status=200)
    current = app.get("/api/articles/one", headers=me).headers["ETag"]
    app.delete("/api/articles/one", headers={**me, "If-Match": current}, status=204)

    assert refused.json == STALE
    app.get("/api/articles/one", status=404)


def test_the_users_own_account_honours_if_match(app: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")
    me = auth_header(jake)
    etag = app.get("/api/user", headers=me).headers["ETag"]
    assert app.get("/api/user", headers=me).headers["ETag"] == etag  # stable: the same token comes back

    app.put_json("/api/user", {"user": {"bio": "one"}}, headers={**me, "If-Match": etag})
    refused = app.put_json("/api/user", {"user": {"bio": "two"}}, headers={**me, "If-Match": etag}, status=412)

    assert refused.json == STALE and app.get("/api/user", headers=me).json["user"]["bio"] == "one"


@pytest.mark.parametrize("if_match", ["*", "", '"x", {current}', "{current}"])
def test_a_matching_star_or_absent_condition_lets_the_write_through(app: TestApp, db: Session, if_match: str) -> None:
    jake = make_user(db, "jake")
    make_article(db, jake, title="One", slug="one")
    me = auth_header(jake)
    current = app.get("/api/articles/one", headers=me).headers["ETag"]

    response = app.put_json(
        "/api/articles/one", {"article": {"body": "x"}}, headers={**me, "If-Match": if_match.format(current=current)}
    )

    assert response.status_int == 200
    assert response.json["article"]["body"] == "x"


def test_a_condition_is_checked_after_the_token_and_the_article_existing(app: TestApp, db: Session) -> None:
    jake, anne = make_user(db, "jake"), make_user(db, "anne")
    make_article(db, jake, title="One", slug="one")

    app.put_json("/api/articles/one", {"article": {"body": "x"}}, headers={"If-Match": '"x"'}, status=401)
    app.put_json(
        "/api/articles/nope", {"article": {"body": "x"}}, headers={**auth_header(jake), "If-Match": '"x"'}, status=404
    )
    current = app.get("/api/articles/one", headers=auth_header(anne)).headers["ETag"]
    app.put_json(
        "/api/articles/one", {"article": {"body": "x"}}, headers={**auth_header(anne), "If-Match": current}, status=403
    )


@pytest.mark.parametrize("condition", [{"If-Match": '"stale"'}, {"If-None-Match": "*"}, {"If-Match": "*"}])
def test_a_non_authors_conditional_write_is_refused_for_the_author_check_not_the_condition(
    app: TestApp, db: Session, condition: dict[str, str]
) -> None:
    # RFC 9110 13.2.1: a precondition is evaluated only for a request that would otherwise succeed.
    jake, anne = make_user(db, "jake"), make_user(db, "anne")
    make_article(db, jake, title="One", slug="one")
    other = {**auth_header(anne), **condition}

    app.put_json("/api/articles/one", {"article": {"body": "x"}}, headers=other, status=403)
    app.delete("/api/articles/one", headers=other, status=403)

    assert app.get("/api/articles/one").json["article"]["body"] != "x"


def test_a_bad_body_is_refused_for_itself_before_a_stale_condition(app: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")
    make_article(db, jake, title="One", slug="one")
    stale = {**auth_header(jake), "If-Match": '"stale"'}

    refused = app.put_json("/api/articles/one", {"article": {"title": ""}}, headers=stale, status=422)

    assert "title" in refused.json["errors"]


@pytest.mark.parametrize("if_none_match", ["*", "{current}", 'W/"x", {weak}'])
def test_if_none_match_naming_the_current_version_refuses_a_write(
    app: TestApp, db: Session, if_none_match: str
) -> None:
    # RFC 9110 13.1.2: "*" or the current ETag (weakly compared) on a resource that exists is false: 412.
    jake = make_user(db, "jake")
    make_article(db, jake, title="One", slug="one")
    me = auth_header(jake)
    current = app.get("/api/articles/one", headers=me).headers["ETag"]
    condition = if_none_match.format(current=current, weak=f"W/{current}")

    refused = app.put_json(
        "/api/articles/one", {"article": {"body": "x"}}, headers={**me, "If-None-Match": condition}, status=412
    )
    app.delete("/api/articles/one", headers={**me, "If-None-Match": condition}, status=412)
    app.put_json("/api/user", {"user": {"bio": "b"}}, headers={**me, "If-None-Match": "*"}, status=412)

    assert refused.json == {"errors": {"If-None-Match": ["matches the current version"]}}
    assert app.get("/api/articles/one").json["article"]["body"] != "x"
    assert app.get("/api/user", headers=me).json["user"]["bio"] != "b"


def test_if_none_match_naming_another_version_lets_the_write_through(app: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")
    make_article(db, jake, title="One", slug="one")

    answer = app.put_json(
        "/api/articles/one", {"article": {"body": "x"}}, headers={**auth_header(jake), "If-None-Match": '"old"'}
    )

    assert answer.json["article"]["body"] == "x"


@pytest.mark.parametrize("if_match", ["W/{current}", 'W/"x", W/{current}', '"a", "b"'])
def test_if_match_compares_strongly_so_a_weak_etag_never_matches(app: TestApp, db: Session, if_match: str) -> None:
    jake = make_user(db, "jake")
    make_article(db, jake, title="One", slug="one")
    me = auth_header(jake)
    current = app.get("/api/articles/one", headers=me).headers["ETag"]

    refused = app.put_json(
        "/api/articles/one",
        {"article": {"body": "x"}},
        headers={**me, "If-Match": if_match.format(current=current)},
        status=412,
    )

    assert refused.json == STALE


def test_if_match_on_a_missing_article_is_404(app: TestApp, db: Session) -> None:
    me = auth_header(make_user(db, "jake"))

    app.put_json("/api/articles/nope", {"article": {"body": "x"}}, headers={**me, "If-Match": "*"}, status=404)
    app.delete("/api/articles/nope", headers={**me, "If-None-Match": "*"}, status=404)
