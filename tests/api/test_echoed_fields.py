"""Clients send back what they read: a resource's read-only fields are accepted in a body and ignored."""

from __future__ import annotations

from sqlalchemy.orm import Session
from webtest import TestApp

from tests.factories import auth_header, make_article, make_user


def test_an_article_saved_with_every_field_it_was_read_with_is_updated(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")
    make_article(db, jake, title="Old title", slug="old-title", tags=["a"])
    read = client.get("/api/articles/old-title", headers=auth_header(jake)).json["article"]
    # What the Angular editor sends: the article as read, with the edits.
    edited = {**read, "title": "New title", "body": "New body", "tagList": ["b"]}

    saved = client.put_json("/api/articles/old-title", {"article": edited}, headers=auth_header(jake)).json["article"]

    assert (saved["title"], saved["body"], saved["tagList"]) == ("New title", "New body", ["b"])
    # The slug follows the new title (the service's rule), not the echoed one.
    assert saved["slug"].startswith("new-title") and saved["createdAt"] == read["createdAt"]


def test_echoed_read_only_article_fields_are_never_applied(client: TestApp, db: Session) -> None:
    jake, anne = make_user(db, "jake"), make_user(db, "anne")
    make_article(db, jake, title="Mine", slug="mine")
    forged = {
        "slug": "hijacked",
        "createdAt": "2000-01-01T00:00:00.000Z",
        "updatedAt": "2000-01-01T00:00:00.000Z",
        "favorited": True,
        "favoritesCount": 1000,
        "author": {"username": "anne", "bio": None, "image": None, "following": False},
    }

    saved = client.put_json("/api/articles/mine", {"article": {"body": "b", **forged}}, headers=auth_header(jake)).json[
        "article"
    ]

    assert saved["slug"] == "mine" and saved["author"]["username"] == "jake"
    assert saved["favoritesCount"] == 0 and saved["favorited"] is False
    assert not saved["createdAt"].startswith("2000") and anne.username == "anne"
    client.get("/api/articles/hijacked", status=404)


def test_a_new_article_may_carry_read_only_fields(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")
    article = {"title": "Fresh", "description": "d", "body": "b", "slug": "x", "favoritesCount": 9, "author": None}

    created = client.post_json("/api/articles", {"article": article}, headers=auth_header(jake), status=201)

    assert created.json["article"]["slug"].startswith("fresh") and created.json["article"]["favoritesCount"] == 0


def test_keys_that_are_not_part_of_the_article_are_still_refused(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")
    make_article(db, jake, slug="mine")

    refused = client.put_json(
        "/api/articles/mine", {"article": {"body": "b", "authorId": 2}}, headers=auth_header(jake), status=422
    )

    assert refused.json == {"errors": {"authorId": ["is not a known field"]}}


def test_a_user_update_may_echo_the_token_it_was_read_with(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")
    read = client.get("/api/user", headers=auth_header(jake)).json["user"]

    saved = client.put_json("/api/user", {"user": {**read, "bio": "Hello"}}, headers=auth_header(jake)).json["user"]

    assert saved["bio"] == "Hello" and saved["token"] != "forged"


def test_a_new_comment_may_echo_read_only_comment_fields(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")
    make_article(db, jake, slug="mine")
    comment = {"body": "Nice", "id": 1, "createdAt": "x", "updatedAt": "x", "author": {"username": "anne"}}

    created = client.post_json(
        "/api/articles/mine/comments", {"comment": comment}, headers=auth_header(jake), status=201
    ).json["comment"]

    assert created["body"] == "Nice" and created["author"]["username"] == "jake"


def test_keys_that_are_not_part_of_a_comment_are_still_refused(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")
    make_article(db, jake, slug="mine")

    client.post_json(
        "/api/articles/mine/comments", {"comment": {"body": "b", "articleId": 3}}, headers=auth_header(jake), status=422
    )
