"""One client journey through the API, as the RealWorld Postman collection walks it."""

from __future__ import annotations

from webtest import TestApp


def test_journey_register_follow_write_favorite_comment_feed_delete(client: TestApp) -> None:
    def register(name: str) -> dict[str, str]:
        user = {"username": name, "email": f"{name}@example.org", "password": f"{name}-password"}
        token = client.post_json("/api/users", {"user": user}, status=201).json["user"]["token"]
        return {"Authorization": f"Token {token}"}

    author, reader = register("author"), register("reader")

    assert client.post("/api/profiles/author/follow", headers=reader).json["profile"]["following"] is True

    article = client.post_json(
        "/api/articles",
        {"article": {"title": "Journey", "description": "d", "body": "b", "tagList": ["travel"]}},
        headers=author,
        status=201,
    ).json["article"]
    slug = article["slug"]

    feed = client.get("/api/articles/feed", headers=reader).json
    assert [a["slug"] for a in feed["articles"]] == [slug] and feed["articlesCount"] == 1

    favored = client.post(f"/api/articles/{slug}/favorite", headers=reader).json["article"]
    assert favored["favorited"] is True and favored["favoritesCount"] == 1

    comment = client.post_json(
        f"/api/articles/{slug}/comments", {"comment": {"body": "Lovely"}}, headers=reader, status=201
    ).json["comment"]
    listed = client.get(f"/api/articles/{slug}/comments", headers=author).json["comments"]
    assert [c["id"] for c in listed] == [comment["id"]]

    assert client.get("/api/articles?favorited=reader").json["articlesCount"] == 1
    assert client.get("/api/articles?tag=travel&author=author").json["articlesCount"] == 1
    assert client.get("/api/tags").json == {"tags": ["travel"]}

    client.delete(f"/api/articles/{slug}/comments/{comment['id']}", headers=reader, status=204)
    client.delete(f"/api/articles/{slug}", headers=author, status=204)

    assert client.get("/api/articles/feed", headers=reader).json == {"articles": [], "articlesCount": 0}
    assert client.get("/api/tags").json == {"tags": []}
    assert (
        client.post(
            "/api/users/login",
            headers={"Content-Type": "application/json"},
            params='{"user": {"email": "reader@example.org", "password": "reader-password"}}',
        ).json["user"]["username"]
        == "reader"
    )
