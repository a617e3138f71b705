"""Comments."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session
from webtest import TestApp

from service.models import Comment
from tests.factories import auth_header, follow, make_article, make_comment, make_user


def test_create_comment_returns_201_with_the_comment(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")
    article = make_article(db, jake)

    body = client.post_json(
        f"/api/articles/{article.slug}/comments",
        {"comment": {"body": "Thank you"}},
        headers=auth_header(jake),
        status=201,
    ).json

    comment = body["comment"]
    assert isinstance(comment["id"], int)
    assert comment["body"] == "Thank you"
    assert comment["author"] == {"username": "jake", "bio": None, "image": None, "following": False}
    assert comment["createdAt"] == comment["updatedAt"]
    assert comment["createdAt"].endswith("Z")


@pytest.mark.parametrize(
    ("payload", "errors"),
    [
        ({"comment": {"body": ""}}, {"body": ["can't be blank"]}),
        ({"comment": {}}, {"body": ["can't be blank"]}),
        ({"comment": {"body": None}}, {"body": ["can't be blank"]}),
        ({"body": "no wrapper"}, {"comment": ["can't be blank"], "body": ["is not a known field"]}),
        ({"comment": "text"}, {"comment": ["must be an object"]}),
    ],
)
def test_create_comment_with_invalid_body_returns_422(
    client: TestApp, db: Session, payload: dict, errors: dict
) -> None:
    jake = make_user(db, "jake")
    article = make_article(db, jake)

    body = client.post_json(
        f"/api/articles/{article.slug}/comments", payload, headers=auth_header(jake), status=422
    ).json

    assert body == {"errors": errors}


def test_create_comment_on_unknown_article_returns_404(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")

    body = client.post_json(
        "/api/articles/nope/comments", {"comment": {"body": "x"}}, headers=auth_header(jake), status=404
    ).json

    assert body == {"errors": {"article": ["not found"]}}


def test_get_comments_lists_newest_first_with_viewer_following(client: TestApp, db: Session) -> None:
    jake, celeb, reader = make_user(db, "jake"), make_user(db, "celeb"), make_user(db, "reader")
    article = make_article(db, jake)
    first = make_comment(db, article, celeb, "first")
    second = make_comment(db, article, jake, "second")
    follow(db, reader, celeb)

    body = client.get(f"/api/articles/{article.slug}/comments", headers=auth_header(reader)).json

    assert [c["id"] for c in body["comments"]] == [second.id, first.id]
    assert [c["author"]["following"] for c in body["comments"]] == [False, True]


def test_get_comments_anonymously_works(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")
    article = make_article(db, jake)
    make_comment(db, article, jake)

    assert len(client.get(f"/api/articles/{article.slug}/comments").json["comments"]) == 1


def test_get_comments_of_unknown_article_returns_404(client: TestApp) -> None:
    assert client.get("/api/articles/nope/comments", status=404).json == {"errors": {"article": ["not found"]}}


def test_delete_own_comment_returns_204_and_removes_it(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")
    article = make_article(db, jake)
    comment_id = make_comment(db, article, jake).id

    response = client.delete(
        f"/api/articles/{article.slug}/comments/{comment_id}", headers=auth_header(jake), status=204
    )

    assert response.body == b""
    db.expire_all()
    assert db.get(Comment, comment_id) is None


def test_delete_someone_elses_comment_returns_403(client: TestApp, db: Session) -> None:
    jake, other = make_user(db, "jake"), make_user(db, "other")
    article = make_article(db, jake)
    comment = make_comment(db, article, other)

    body = client.delete(
        f"/api/articles/{article.slug}/comments/{comment.id}", headers=auth_header(jake), status=403
    ).json

    assert body == {"errors": {"comment": ["forbidden"]}}


def test_delete_unknown_comment_on_real_article_returns_404_comment(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")
    article = make_article(db, jake)

    body = client.delete(f"/api/articles/{article.slug}/comments/999999", headers=auth_header(jake), status=404).json

    assert body == {"errors": {"comment": ["not found"]}}


def test_delete_comment_through_another_article_returns_404_comment(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")
    article, other_article = make_article(db, jake), make_article(db, jake)
    comment = make_comment(db, article, jake)

    client.delete(f"/api/articles/{other_article.slug}/comments/{comment.id}", headers=auth_header(jake), status=404)


def test_delete_comment_on_unknown_article_returns_404_article(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")

    body = client.delete("/api/articles/nope/comments/1", headers=auth_header(jake), status=404).json

    assert body == {"errors": {"article": ["not found"]}}


@pytest.mark.parametrize("comment_id", ["abc", "-1", "99999999999999999999"])
def test_delete_comment_with_impossible_id_returns_404(client: TestApp, db: Session, comment_id: str) -> None:
    jake = make_user(db, "jake")
    article = make_article(db, jake)

    client.delete(f"/api/articles/{article.slug}/comments/{comment_id}", headers=auth_header(jake), status=404)


def test_delete_comment_checks_token_before_existence(client: TestApp) -> None:
    body = client.delete("/api/articles/nope/comments/1", status=401).json

    assert body == {"errors": {"token": ["is missing"]}}
