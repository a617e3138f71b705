"""Usernames are one whatever their case: no look-alike accounts; profile URLs match any case."""

from __future__ import annotations

from sqlalchemy.orm import Session
from webtest import TestApp

from tests.factories import auth_header, make_article, make_user


def test_a_username_differing_only_in_case_is_taken(client: TestApp, db: Session) -> None:
    make_user(db, "jake")

    refused = client.post_json(
        "/api/users", {"user": {"username": "JAKE", "email": "other@x.org", "password": "password1"}}, status=409
    )

    assert refused.json == {"errors": {"username": ["has already been taken"]}}


def test_renaming_to_anothers_name_in_another_case_is_taken(client: TestApp, db: Session) -> None:
    make_user(db, "jake")
    anne = make_user(db, "anne")

    client.put_json("/api/user", {"user": {"username": "Jake"}}, headers=auth_header(anne), status=409)


def test_a_user_may_change_the_case_of_their_own_name(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")

    renamed = client.put_json("/api/user", {"user": {"username": "Jake"}}, headers=auth_header(jake))

    assert renamed.json["user"]["username"] == "Jake"
    assert client.get("/api/profiles/jake").json["profile"]["username"] == "Jake"


def test_a_profile_url_matches_the_name_in_any_case(client: TestApp, db: Session) -> None:
    make_user(db, "jake")

    profile = client.get("/api/profiles/JAKE").json["profile"]

    assert profile["username"] == "jake"


def test_author_and_favorited_filters_match_the_name_in_any_case(client: TestApp, db: Session) -> None:
    make_article(db, make_user(db, "jake"), title="By jake")

    listed = client.get("/api/articles?author=JaKe").json

    assert [a["title"] for a in listed["articles"]] == ["By jake"]
