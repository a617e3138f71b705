"""Articles: create, read, list, feed, update, delete, favorite."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from webtest import TestApp

from service.models import Comment, favorites
from tests.factories import auth_header, favorite, follow, make_article, make_comment, make_user

WIRE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
NEW = {"title": "How to train your dragon", "description": "Ever wonder how?", "body": "You have to believe"}
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def create(client: TestApp, headers: dict, status: int = 201, **fields: object) -> dict:
    return client.post_json("/api/articles", {"article": {**NEW, **fields}}, headers=headers, status=status).json


# -- create ---------------------------------------------------------------


def test_create_article_returns_201_with_every_field(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")

    article = create(client, auth_header(jake), tagList=["reactjs", "angularjs", "dragons"])["article"]

    assert set(article) == {
        "slug",
        "title",
        "description",
        "body",
        "tagList",
        "createdAt",
        "updatedAt",
        "favorited",
        "favoritesCount",
        "author",
    }
    assert article["title"] == NEW["title"]
    assert article["tagList"] == ["angularjs", "dragons", "reactjs"]
    assert article["favorited"] is False and article["favoritesCount"] == 0
    assert article["author"] == {"username": "jake", "bio": None, "image": None, "following": False}
    assert WIRE_TIME.match(article["createdAt"]) and article["createdAt"] == article["updatedAt"]


def test_create_article_slug_is_kebab_title_plus_suffix(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")

    slug = create(client, auth_header(jake))["article"]["slug"]

    assert re.fullmatch(r"how-to-train-your-dragon-[a-z0-9]{6}", slug)


def test_create_article_with_duplicate_title_gets_a_distinct_slug(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")

    first = create(client, auth_header(jake))["article"]["slug"]
    second = create(client, auth_header(jake))["article"]["slug"]

    assert first != second


def test_create_article_transliterates_a_non_latin_title_into_the_slug(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")

    slug = create(client, auth_header(jake), title="Привет, мир! 你好")["article"]["slug"]

    assert re.fullmatch(r"[a-z0-9-]+", slug) and slug.startswith("privet-mir")


def test_create_article_without_tag_list_has_no_tags(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")

    assert create(client, auth_header(jake))["article"]["tagList"] == []


def test_create_article_deduplicates_tags(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")

    assert create(client, auth_header(jake), tagList=["b", "a", "b", " a "])["article"]["tagList"] == ["a", "b"]


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"title": ""}, {"title": ["can't be blank"]}),
        ({"description": ""}, {"description": ["can't be blank"]}),
        ({"body": ""}, {"body": ["can't be blank"]}),
        ({"title": None}, {"title": ["can't be blank"]}),
        ({"title": 7}, {"title": ["must be a string"]}),
        ({"tagList": None}, {"tagList": ["can't be blank"]}),
        ({"tagList": "dragons"}, {"tagList": ["must be a list"]}),
        ({"tagList": ["ok", 3]}, {"tagList": ["must be a string"]}),
        ({"tagList": [""]}, {"tagList": ["can't be blank"]}),
        ({"title": "x" * 256}, {"title": ["is too long (maximum is 255 characters)"]}),
        ({"body": "bad\ud800surrogate"}, {"body": ["must be valid Unicode text"]}),
        ({"authorId": 2}, {"authorId": ["is not a known field"]}),  # not part of Article (read-only fields are ignored)
    ],
)
def test_create_article_with_invalid_field_returns_422(
    client: TestApp, db: Session, fields: dict, errors: dict
) -> None:
    jake = make_user(db, "jake")

    assert create(client, auth_header(jake), status=422, **fields) == {"errors": errors}


def test_create_article_without_fields_reports_each_as_blank(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")

    body = client.post_json("/api/articles", {"article": {}}, headers=auth_header(jake), status=422).json

    assert body == {"errors": {f: ["can't be blank"] for f in ("title", "description", "body")}}


# -- read -----------------------------------------------------------------


def test_get_article_anonymously_has_viewer_flags_false(client: TestApp, db: Session) -> None:
    jake, fan = make_user(db, "jake"), make_user(db, "fan")
    article = make_article(db, jake, tags=["b", "a"])
    favorite(db, fan, article)

    body = client.get(f"/api/articles/{article.slug}").json["article"]

    assert body["body"] == article.body
    assert body["tagList"] == ["a", "b"]
    assert body["favorited"] is False and body["favoritesCount"] == 1
    assert body["author"]["following"] is False


def test_get_article_shows_favorited_and_following_for_the_viewer(client: TestApp, db: Session) -> None:
    jake, fan = make_user(db, "jake"), make_user(db, "fan")
    article = make_article(db, jake)
    favorite(db, fan, article)
    follow(db, fan, jake)

    body = client.get(f"/api/articles/{article.slug}", headers=auth_header(fan)).json["article"]

    assert body["favorited"] is True and body["author"]["following"] is True


def test_get_unknown_article_returns_404(client: TestApp) -> None:
    assert client.get("/api/articles/nope", status=404).json == {"errors": {"article": ["not found"]}}


# -- list -----------------------------------------------------------------


def test_list_articles_is_newest_first_without_body(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")
    old = make_article(db, jake, created_at=T0)
    new = make_article(db, jake, created_at=T0 + timedelta(days=1))

    body = client.get("/api/articles").json

    assert [a["slug"] for a in body["articles"]] == [new.slug, old.slug]
    assert all("body" not in a for a in body["articles"])
    assert body["articlesCount"] == 2


def test_list_articles_breaks_created_at_ties_by_newest_id(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")
    first = make_article(db, jake, created_at=T0)
    second = make_article(db, jake, created_at=T0)

    slugs = [a["slug"] for a in client.get("/api/articles").json["articles"]]

    assert slugs == [second.slug, first.slug]


def test_list_articles_defaults_to_20_and_counts_all_matches(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")
    for n in range(23):
        make_article(db, jake, created_at=T0 + timedelta(minutes=n))

    body = client.get("/api/articles").json

    assert len(body["articles"]) == 20
    assert body["articlesCount"] == 23


def test_list_articles_pages_with_limit_and_offset(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")
    made = [make_article(db, jake, created_at=T0 + timedelta(minutes=n)) for n in range(5)]

    body = client.get("/api/articles?limit=2&offset=1").json

    assert [a["slug"] for a in body["articles"]] == [made[3].slug, made[2].slug]
    assert body["articlesCount"] == 5


def test_list_articles_past_the_end_is_empty_with_the_total(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")
    make_article(db, jake)

    assert client.get("/api/articles?offset=5").json == {"articles": [], "articlesCount": 1}


def test_list_articles_filters_combine_with_and(client: TestApp, db: Session) -> None:
    jake, ann, fan = make_user(db, "jake"), make_user(db, "ann"), make_user(db, "fan")
    match = make_article(db, jake, tags=["dragons"])
    wrong_tag = make_article(db, jake, tags=["cats"])
    wrong_author = make_article(db, ann, tags=["dragons"])
    not_favorited = make_article(db, jake, tags=["dragons", "x"])
    for article in (match, wrong_tag, wrong_author):
        favorite(db, fan, article)

    def slugs(query: str) -> set[str]:
        return {a["slug"] for a in client.get(f"/api/articles?{query}").json["articles"]}

    assert slugs("tag=dragons") == {match.slug, wrong_author.slug, not_favorited.slug}
    assert slugs("author=jake") == {match.slug, wrong_tag.slug, not_favorited.slug}
    assert slugs("favorited=fan") == {match.slug, wrong_tag.slug, wrong_author.slug}
    assert slugs("tag=dragons&author=jake&favorited=fan") == {match.slug}
    assert client.get("/api/articles?tag=dragons&author=jake").json["articlesCount"] == 2


@pytest.mark.parametrize("query", ["author=nobody", "favorited=nobody", "tag=nothing"])
def test_list_articles_with_unknown_filter_value_is_empty(client: TestApp, db: Session, query: str) -> None:
    make_article(db, make_user(db, "jake"), tags=["dragons"])

    assert client.get(f"/api/articles?{query}").json == {"articles": [], "articlesCount": 0}


def test_list_articles_personalises_for_the_viewer(client: TestApp, db: Session) -> None:
    jake, fan = make_user(db, "jake"), make_user(db, "fan")
    article = make_article(db, jake)
    favorite(db, fan, article)
    follow(db, fan, jake)

    item = client.get("/api/articles", headers=auth_header(fan)).json["articles"][0]

    assert item["favorited"] is True and item["favoritesCount"] == 1 and item["author"]["following"] is True


@pytest.mark.parametrize(
    ("query", "errors"),
    [
        ("limit=abc", {"limit": ["must be an integer"]}),
        ("limit=0", {"limit": ["must be between 1 and 100"]}),
        ("limit=101", {"limit": ["must be between 1 and 100"]}),
        ("limit=-5", {"limit": ["must be between 1 and 100"]}),
        ("limit=2.5", {"limit": ["must be an integer"]}),
        ("offset=-1", {"offset": ["must be between 0 and 2147483647"]}),
        ("offset=99999999999999999999", {"offset": ["must be between 0 and 2147483647"]}),
        ("offset=", {"offset": ["must be an integer"]}),
        ("tag=%00", {"tag": ["must not contain NUL characters"]}),
    ],
)
def test_list_articles_with_invalid_paging_returns_422(client: TestApp, query: str, errors: dict) -> None:
    assert client.get(f"/api/articles?{query}", status=422).json == {"errors": errors}


def test_list_articles_accepts_the_largest_page(client: TestApp, db: Session) -> None:
    author = make_user(db, "jake")
    for n in range(3):
        make_article(db, author, title=f"Article {n}")

    response = client.get("/api/articles?limit=100")

    assert response.status_int == 200
    assert response.json["articlesCount"] == 3 and len(response.json["articles"]) == 3


def test_list_articles_ignores_unknown_query_parameters(client: TestApp, db: Session) -> None:
    make_article(db, make_user(db, "jake"), title="Only one")

    response = client.get("/api/articles?_=12345")

    assert response.status_int == 200
    assert [a["title"] for a in response.json["articles"]] == ["Only one"]


# -- feed -----------------------------------------------------------------


def test_feed_lists_only_followed_authors_newest_first(client: TestApp, db: Session) -> None:
    me, star, stranger = make_user(db, "me"), make_user(db, "star"), make_user(db, "stranger")
    follow(db, me, star)
    old = make_article(db, star, created_at=T0)
    make_article(db, stranger, created_at=T0 + timedelta(hours=1))
    new = make_article(db, star, created_at=T0 + timedelta(hours=2))
    make_article(db, me, created_at=T0 + timedelta(hours=3))

    body = client.get("/api/articles/feed", headers=auth_header(me)).json

    assert [a["slug"] for a in body["articles"]] == [new.slug, old.slug]
    assert body["articlesCount"] == 2
    assert all(a["author"]["following"] for a in body["articles"])
    assert all("body" not in a for a in body["articles"])


def test_feed_pages_with_limit_and_offset(client: TestApp, db: Session) -> None:
    me, star = make_user(db, "me"), make_user(db, "star")
    follow(db, me, star)
    made = [make_article(db, star, created_at=T0 + timedelta(minutes=n)) for n in range(4)]

    body = client.get("/api/articles/feed?limit=1&offset=1", headers=auth_header(me)).json

    assert [a["slug"] for a in body["articles"]] == [made[2].slug]
    assert body["articlesCount"] == 4


@pytest.mark.parametrize("query", ["limit=100&offset=2147483647", "offset=2147483647", "limit=100&offset=2147483600"])
@pytest.mark.parametrize(
    "path", ["/api/articles/feed", "/api/articles", "/api/articles?author=star", "/api/articles?tag=t"]
)
def test_the_largest_offset_answers_an_empty_page_with_the_total(
    client: TestApp, db: Session, path: str, query: str
) -> None:
    # The feed's statement once added limit and offset in SQL: past 2**31, a 500 on PostgreSQL (issue 34).
    me, star = make_user(db, "me"), make_user(db, "star")
    follow(db, me, star)
    make_article(db, star, tags=["t"])
    separator = "&" if "?" in path else "?"

    body = client.get(f"{path}{separator}{query}", headers=auth_header(me)).json

    assert body == {"articles": [], "articlesCount": 1}


def test_feed_is_not_taken_for_an_article_slug(client: TestApp) -> None:
    # /api/articles/feed must win over /api/articles/<slug>: 401, not 404 "article".
    assert client.get("/api/articles/feed", status=401).json == {"errors": {"token": ["is missing"]}}


def test_feed_with_invalid_limit_returns_422(client: TestApp, db: Session) -> None:
    client.get("/api/articles/feed?limit=0", headers=auth_header(make_user(db, "me")), status=422)


# -- update ---------------------------------------------------------------


def test_update_article_changes_only_sent_fields(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")
    article = make_article(db, jake, tags=["keep"])

    body = client.put_json(
        f"/api/articles/{article.slug}", {"article": {"body": "new body"}}, headers=auth_header(jake)
    ).json["article"]

    assert body["body"] == "new body"
    assert body["title"] == article.title and body["description"] == article.description
    assert body["slug"] == article.slug
    assert body["tagList"] == ["keep"]


def test_update_article_title_changes_the_slug(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")
    article = make_article(db, jake)

    body = client.put_json(
        f"/api/articles/{article.slug}", {"article": {"title": "A new title"}}, headers=auth_header(jake)
    ).json["article"]

    assert re.fullmatch(r"a-new-title-[a-z0-9]{6}", body["slug"])
    client.get(f"/api/articles/{body['slug']}")
    client.get(f"/api/articles/{article.slug}", status=404)


def test_update_article_with_empty_tag_list_removes_every_tag(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")
    article = make_article(db, jake, tags=["a", "b"])

    body = client.put_json(
        f"/api/articles/{article.slug}", {"article": {"tagList": []}}, headers=auth_header(jake)
    ).json["article"]

    assert body["tagList"] == []


def test_update_article_replaces_the_tag_list(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")
    article = make_article(db, jake, tags=["a", "b"])

    body = client.put_json(
        f"/api/articles/{article.slug}", {"article": {"tagList": ["c", "a"]}}, headers=auth_header(jake)
    ).json["article"]

    assert body["tagList"] == ["a", "c"]


def test_update_article_keeps_created_at_and_moves_updated_at_forward(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")
    created = create(client, auth_header(jake))["article"]

    # Immediately after creation: usually the same millisecond.
    updated = client.put_json(
        f"/api/articles/{created['slug']}", {"article": {"body": "edited"}}, headers=auth_header(jake)
    ).json["article"]

    assert updated["createdAt"] == created["createdAt"]
    assert updated["updatedAt"] > created["updatedAt"]
    assert WIRE_TIME.match(updated["updatedAt"])


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"title": ""}, {"title": ["can't be blank"]}),
        ({"body": None}, {"body": ["can't be blank"]}),
        ({"tagList": None}, {"tagList": ["can't be blank"]}),
        ({"authorId": 1}, {"authorId": ["is not a known field"]}),  # an echoed slug is ignored instead
    ],
)
def test_update_article_with_invalid_field_returns_422(
    client: TestApp, db: Session, fields: dict, errors: dict
) -> None:
    jake = make_user(db, "jake")
    article = make_article(db, jake)

    body = client.put_json(
        f"/api/articles/{article.slug}", {"article": fields}, headers=auth_header(jake), status=422
    ).json

    assert body == {"errors": errors}


def test_update_someone_elses_article_returns_403(client: TestApp, db: Session) -> None:
    jake, other = make_user(db, "jake"), make_user(db, "other")
    article = make_article(db, jake)

    body = client.put_json(
        f"/api/articles/{article.slug}", {"article": {"body": "mine now"}}, headers=auth_header(other), status=403
    ).json

    assert body == {"errors": {"article": ["forbidden"]}}


def test_update_unknown_article_returns_404(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")

    client.put_json("/api/articles/nope", {"article": {"body": "x"}}, headers=auth_header(jake), status=404)


# -- delete ---------------------------------------------------------------


def test_delete_article_returns_204_and_removes_comments_and_favorites(client: TestApp, db: Session) -> None:
    jake, fan = make_user(db, "jake"), make_user(db, "fan")
    article = make_article(db, jake, tags=["t"])
    slug, article_id = article.slug, article.id
    make_comment(db, article, fan)
    favorite(db, fan, article)

    response = client.delete(f"/api/articles/{slug}", headers=auth_header(jake), status=204)

    assert response.body == b""
    client.get(f"/api/articles/{slug}", status=404)
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(Comment).where(Comment.article_id == article_id)) == 0
    assert db.scalar(select(func.count()).select_from(favorites)) == 0


def test_delete_someone_elses_article_returns_403(client: TestApp, db: Session) -> None:
    jake, other = make_user(db, "jake"), make_user(db, "other")
    article = make_article(db, jake)

    body = client.delete(f"/api/articles/{article.slug}", headers=auth_header(other), status=403).json

    assert body == {"errors": {"article": ["forbidden"]}}


def test_delete_unknown_article_returns_404(client: TestApp, db: Session) -> None:
    client.delete("/api/articles/nope", headers=auth_header(make_user(db, "jake")), status=404)


# -- favorites ------------------------------------------------------------


def test_favorite_returns_the_article_favorited(client: TestApp, db: Session) -> None:
    jake, fan = make_user(db, "jake"), make_user(db, "fan")
    article = make_article(db, jake)

    body = client.post(f"/api/articles/{article.slug}/favorite", headers=auth_header(fan)).json["article"]

    assert body["favorited"] is True and body["favoritesCount"] == 1
    assert body["body"] == article.body


def test_favorite_twice_is_idempotent(client: TestApp, db: Session) -> None:
    jake, fan = make_user(db, "jake"), make_user(db, "fan")
    article = make_article(db, jake)

    client.post(f"/api/articles/{article.slug}/favorite", headers=auth_header(fan))
    body = client.post(f"/api/articles/{article.slug}/favorite", headers=auth_header(fan)).json["article"]

    assert body["favorited"] is True and body["favoritesCount"] == 1


def test_unfavorite_returns_the_article_not_favorited(client: TestApp, db: Session) -> None:
    jake, fan = make_user(db, "jake"), make_user(db, "fan")
    article = make_article(db, jake)
    favorite(db, fan, article)

    body = client.delete(f"/api/articles/{article.slug}/favorite", headers=auth_header(fan)).json["article"]

    assert body["favorited"] is False and body["favoritesCount"] == 0


def test_unfavorite_when_not_favorited_is_idempotent(client: TestApp, db: Session) -> None:
    jake, fan = make_user(db, "jake"), make_user(db, "fan")
    article = make_article(db, jake)

    body = client.delete(f"/api/articles/{article.slug}/favorite", headers=auth_header(fan)).json["article"]

    assert body["favorited"] is False


@pytest.mark.parametrize("method", ["post", "delete"])
def test_favorite_unknown_article_returns_404(client: TestApp, db: Session, method: str) -> None:
    body = getattr(client, method)(
        "/api/articles/nope/favorite", headers=auth_header(make_user(db, "fan")), status=404
    ).json

    assert body == {"errors": {"article": ["not found"]}}
