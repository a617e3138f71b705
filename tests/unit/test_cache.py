"""Response-cache middleware against a stub WSGI app that follows the dispatcher's protocol."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from cachelib import SimpleCache
from webtest import TestApp

from service.config import SHARED_ANSWER_KEY, SHARED_STORE_KEY, SHARED_WANTED_KEY
from service.middleware.cache import ResponseCacheMiddleware
from service.wire import json_bytes_response

#: What this stub's "route table" lets the cache share: everything but the personal resources.
PERSONAL = ("/api/articles/feed", "/api/user")


class Stub:
    """A tiny API: every GET answers with a counter, so a cache hit is visible.

    Like the dispatcher, it hands its answer back for the cache when asked to.
    """

    def __init__(self) -> None:
        self.calls = itertools.count(1)
        self.write_status = "201 Created"

    last_shared: object = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        self.last_shared = environ.get(SHARED_ANSWER_KEY)
        if environ["REQUEST_METHOD"] in ("GET", "HEAD"):
            body = json.dumps({"call": next(self.calls), "path": environ["PATH_INFO"]}).encode()
            if environ.get(SHARED_WANTED_KEY):
                environ[SHARED_STORE_KEY] = body
            return json_bytes_response(body)(environ, start_response)  # type: ignore[no-any-return]
        start_response(self.write_status, [("Content-Type", "application/json")])
        return [b"{}"]


@pytest.fixture
def stub() -> Stub:
    return Stub()


def make(stub: Stub, cache: Any = None, min_uses: int = 1) -> TestApp:
    cache = cache if cache is not None else SimpleCache()
    cacheable = lambda environ: environ["PATH_INFO"] not in PERSONAL  # noqa: E731
    return TestApp(ResponseCacheMiddleware(stub, cacheable, cache, ttl=60, min_uses=min_uses))


@pytest.mark.parametrize(
    "path",
    ["/api/articles", "/api/articles/some-slug", "/api/articles/s/comments", "/api/profiles/jake", "/api/tags"],
)
def test_anonymous_reads_of_cacheable_resources_are_served_from_the_cache(stub: Stub, path: str) -> None:
    app = make(stub)

    first, second = app.get(path).json, app.get(path).json

    assert first == second


def test_query_parameter_order_does_not_split_the_cache(stub: Stub) -> None:
    app = make(stub)

    assert app.get("/api/articles?tag=a&limit=5").json == app.get("/api/articles?limit=5&tag=a").json


@pytest.mark.parametrize("path", ["/api/articles/feed", "/api/user"])
def test_personal_resources_are_never_cached(stub: Stub, path: str) -> None:
    app = make(stub)

    assert app.get(path).json != app.get(path).json


def test_requests_with_a_token_reach_the_app_with_the_shared_answer_in_hand(stub: Stub) -> None:
    app = make(stub)
    anonymous = app.get("/api/articles")

    personal = app.get("/api/articles", headers={"Authorization": "Token x"})

    assert personal.json != anonymous.json  # the app answered (this stub ignores what it was handed)
    assert stub.last_shared == anonymous.body


def test_a_successful_write_makes_every_cached_answer_unreachable(stub: Stub) -> None:
    app = make(stub)
    before = app.get("/api/articles").json

    app.post_json("/api/articles", {}, status=201)

    assert app.get("/api/articles").json != before


def test_a_failed_write_keeps_the_cache(stub: Stub) -> None:
    app = make(stub)
    before = app.get("/api/articles").json
    stub.write_status = "422 Unprocessable Entity"

    app.post_json("/api/articles", {}, status=422)

    assert app.get("/api/articles").json == before


def test_a_lost_generation_never_brings_old_entries_back(stub: Stub) -> None:
    cache = SimpleCache()
    app = make(stub, cache)
    first = app.get("/api/tags").json
    app.post_json("/api/articles", {}, status=201)
    app.get("/api/tags")

    cache.delete("conduit:generation")  # evicted, or the cache restarted (entries survive)

    assert app.get("/api/tags").json != first


def test_a_hit_gets_an_etag_and_if_none_match_gives_304(stub: Stub) -> None:
    app = make(stub)
    app.get("/api/tags")
    hit = app.get("/api/tags")

    revalidated = app.get("/api/tags", headers={"If-None-Match": hit.headers["ETag"]}, status=304)

    assert hit.headers["X-Cache"] == "hit" and hit.headers["ETag"] and revalidated.body == b""
    assert hit.headers["Cache-Control"] == "no-cache"
    assert "Authorization" in hit.headers["Vary"]


class BrokenCache(SimpleCache):
    def get(self, key: str) -> Any:
        raise ConnectionError("cache is down")

    def set(self, key: str, value: Any, timeout: int | None = None) -> bool:
        raise ConnectionError("cache is down")

    def add(self, key: str, value: Any, timeout: int | None = None) -> bool:
        raise ConnectionError("cache is down")


def test_a_failing_cache_is_bypassed(stub: Stub) -> None:
    app = make(stub, BrokenCache())

    first, second = app.get("/api/tags"), app.get("/api/tags")
    app.post_json("/api/articles", {}, status=201)

    assert first.status_int == second.status_int == 200 and first.json != second.json


def test_with_min_uses_2_a_url_is_stored_at_its_second_miss_and_served_from_then_on(stub: Stub) -> None:
    cache = SimpleCache()
    app = make(stub, cache, min_uses=2)

    first, second, third = (app.get("/api/tags") for _ in range(3))

    assert [r.headers["X-Cache"] for r in (first, second, third)] == ["miss", "miss", "hit"]
    assert first.json != second.json == third.json


def test_with_min_uses_2_one_off_urls_never_reach_the_cache(stub: Stub) -> None:
    stored: list[str] = []

    class Recording(SimpleCache):
        def set(self, key: str, value: Any, timeout: Any = None) -> bool:
            stored.append(key)
            return bool(super().set(key, value, timeout))

    app = make(stub, Recording(), min_uses=2)
    for n in range(50):
        app.get(f"/api/articles?offset={n}")

    assert [key for key in stored if "articles" in key] == []


def test_a_popular_url_is_stored_again_at_its_first_miss_after_a_write(stub: Stub) -> None:
    app = make(stub, min_uses=2)
    for _ in range(3):
        app.get("/api/tags")

    app.post_json("/api/articles", {}, status=201)
    refreshed, again = app.get("/api/tags"), app.get("/api/tags")

    assert refreshed.headers["X-Cache"] == "miss" and again.headers["X-Cache"] == "hit"


def test_heads_never_store_an_entry_so_a_later_get_gets_the_whole_body(stub: Stub) -> None:
    app = make(stub)
    for _ in range(8):
        app.head("/api/tags")

    after = app.get("/api/tags")

    assert after.headers["X-Cache"] == "miss" and after.json["path"] == "/api/tags"


def test_a_head_is_answered_from_a_stored_get_without_its_body(stub: Stub) -> None:
    app = make(stub)
    got = app.get("/api/tags")

    head = app.head("/api/tags")

    assert head.headers["X-Cache"] == "hit" and head.body == b""
    assert head.headers["Content-Length"] == str(len(got.body)) and head.headers["ETag"]


def test_a_head_on_a_miss_has_the_length_of_the_get(stub: Stub) -> None:
    head = make(stub, min_uses=2).head("/api/tags")

    assert head.headers["X-Cache"] == "miss" and head.body == b"" and int(head.headers["Content-Length"]) > 0


def test_repeated_parameters_in_another_order_are_another_answer(stub: Stub) -> None:
    app = make(stub)
    app.get("/api/articles?tag=a&tag=b")

    reordered = app.get("/api/articles?tag=b&tag=a")

    assert reordered.headers["X-Cache"] == "miss"


def test_values_after_the_first_of_a_parameter_do_not_split_the_cache(stub: Stub) -> None:
    app = make(stub)
    app.get("/api/articles?tag=a&limit=5")

    assert app.get("/api/articles?limit=5&tag=a&tag=b").headers["X-Cache"] == "hit"
