"""Tags."""

from __future__ import annotations

from sqlalchemy.orm import Session
from webtest import TestApp

from tests.factories import auth_header, make_article, make_user


def test_get_tags_lists_every_tag_in_use_alphabetically(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")
    make_article(db, jake, tags=["zebra", "apple"])
    make_article(db, jake, tags=["apple", "mango"])

    body = client.get("/api/tags").json

    assert body == {"tags": ["apple", "mango", "zebra"]}


def test_get_tags_is_empty_without_articles(client: TestApp) -> None:
    assert client.get("/api/tags").json == {"tags": []}


def test_get_tags_has_no_cap(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")
    for n in range(4):
        make_article(db, jake, tags=[f"tag{n:02}{i}" for i in range(30)])

    assert len(client.get("/api/tags").json["tags"]) == 120


def test_get_tags_forgets_tags_of_deleted_articles(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")
    article = make_article(db, jake, tags=["lonely"])

    client.delete(f"/api/articles/{article.slug}", headers=auth_header(jake), status=204)

    assert client.get("/api/tags").json == {"tags": []}
