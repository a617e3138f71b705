"""The shared reads and their middleware against a stub WSGI app that plays the dispatcher's part."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from cachelib import SimpleCache
from webtest import TestApp

from service import environ_keys
from service.conditional_read import ConditionalRead
from service.json_bodies import encode_json
from service.middleware.shared_hits import SharedHitsMiddleware
from service.shared_reads import surrogates
from service.shared_reads.reads import SharedReads
from service.shared_reads.store import versioned
from service.shared_reads.urls import first_values
from service.stores.sqlite_cache import SQLiteCache

#: What this stub's "route table" lets the cache share: everything but the personal resources.
PERSONAL = ("/api/articles/feed", "/api/user")
#: The query parameters the stubbed routes read (any other is left out of an entry's key).
READ = frozenset({"tag", "author", "favorited", "limit", "offset"})


def depends_on(path: str, query: Mapping[str, str]) -> tuple[str, ...]:
    """What the URL alone says the answer depends on (a route's ``cache=``)."""
    if path == "/api/articles":
        return surrogates.article_list(query)
    return (f"page:{path}",)


class Stub:
    """A tiny API: every GET answers with a counter, so a cache hit is visible.

    ``/api/articles`` lists the articles in ``self.listed``; ``/api/articles/<slug>``
    shows one. A POST "commits" and forgets the keys in its JSON body, before and
    after, as the unit of work does. Like the dispatcher, it keeps a missed read's answer.
    """

    def __init__(self) -> None:
        self.calls = itertools.count(1)
        self.write_status = "201 Created"
        self.listed = ["a", "b"]
        self.during_read: Callable[[], None] | None = None
        self.shared: SharedReads | None = None

    last_lookup: Any = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        assert self.shared is not None
        lookup = self.last_lookup = environ.get(environ_keys.SHARED_LOOKUP)
        path = environ["PATH_INFO"]
        if environ["REQUEST_METHOD"] in ("GET", "HEAD"):
            if self.during_read is not None:
                self.during_read()  # a write that commits while this read is being computed
            data: dict[str, Any] = {"call": next(self.calls), "path": path}
            if path == "/api/articles":
                data["articles"] = [_article(slug) for slug in self.listed]
            elif path.startswith("/api/articles/"):
                data["article"] = _article(path.rsplit("/", 1)[-1])
            if lookup is not None:
                body = self.shared.keep(lookup, depends_on(path, lookup.query), data, path)
            else:
                body = encode_json(data)
            return ConditionalRead(body)(environ, start_response)
        start_response(self.write_status, [("Content-Type", "application/json")])
        if self.write_status.startswith("2"):
            changed = frozenset(json.loads(environ["wsgi.input"].read() or b"[]"))
            self.shared.after_commit(changed, self.shared.before_commit(changed, None))
        return [b"{}"]


def _article(slug: str) -> dict[str, Any]:
    return {"slug": slug, "favoritesCount": 0, "favorited": False, "author": _author()}


def _author() -> dict[str, Any]:
    return {"username": "jake", "following": False}


@pytest.fixture
def stub() -> Stub:
    return Stub()


def make(stub: Stub, cache: Any = None, min_uses: int = 1, owed: Path | None = None) -> TestApp:
    cache = cache if cache is not None else SimpleCache()
    shared = SharedReads(versioned(cache), ttl=60, min_uses=min_uses, owed_path=owed)
    stub.shared = shared

    def shares(environ: dict[str, Any]) -> frozenset[str] | None:
        return None if environ["PATH_INFO"] in PERSONAL else READ

    return TestApp(SharedHitsMiddleware(stub, shares, shared))


def write(app: TestApp, *keys: str) -> None:
    """A successful write that changed what ``keys`` name."""
    app.post("/api/anything", json.dumps(keys), status=201)


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
    assert stub.last_lookup.answer.body == anonymous.body


def test_a_write_forgets_the_pages_that_show_what_it_changed(stub: Stub) -> None:
    app = make(stub)
    pages = ["/api/articles", "/api/articles/a", "/api/articles/b", "/api/articles?tag=x", "/api/tags"]
    stub.listed = ["a"]
    before = {page: app.get(page).json for page in pages}

    write(app, surrogates.article("b"))
    after = {page: app.get(page) for page in pages}

    changed = {page for page in pages if after[page].json != before[page]}
    assert changed == {"/api/articles/b"}  # the unfiltered list shows only "a" here
    assert all(after[page].headers["X-Cache"] == "hit" for page in pages if page not in changed)


def test_a_change_to_an_article_forgets_every_list_that_shows_it(stub: Stub) -> None:
    app = make(stub)
    stub.listed = ["a", "b"]
    listing, tagged = app.get("/api/articles").json, app.get("/api/articles?tag=x").json

    write(app, surrogates.article("a"))

    assert app.get("/api/articles").json != listing and app.get("/api/articles?tag=x").json != tagged


def test_a_change_to_a_list_forgets_every_page_of_that_list_only(stub: Stub) -> None:
    app = make(stub)
    stub.listed = []
    first, deeper, other = (
        app.get(p).json for p in ("/api/articles?tag=x", "/api/articles?tag=x&offset=20", "/api/articles?tag=y")
    )

    write(app, surrogates.tagged("x"))

    assert app.get("/api/articles?tag=x").json != first
    assert app.get("/api/articles?tag=x&offset=20").json != deeper
    assert app.get("/api/articles?tag=y").json == other


def test_a_write_that_changes_nothing_shared_keeps_the_cache(stub: Stub) -> None:
    app = make(stub)
    before = app.get("/api/articles").json

    write(app)  # a login, a follow

    assert app.get("/api/articles").json == before


def test_a_failed_write_keeps_the_cache(stub: Stub) -> None:
    app = make(stub)
    before = app.get("/api/articles").json
    stub.write_status = "422 Unprocessable Entity"

    app.post("/api/articles", json.dumps([surrogates.UNFILTERED_LISTS]), status=422)

    assert app.get("/api/articles").json == before


def test_an_answer_computed_across_a_write_is_never_served(stub: Stub) -> None:
    """The reader read the database before the write committed and stores after its bump."""
    shared = SimpleCache()
    app, writer = make(stub, shared), make(stub, shared)  # two workers on one store

    def concurrent_write() -> None:
        stub.during_read = None
        write(writer, surrogates.article("a"))

    stub.during_read = concurrent_write

    stale = app.get("/api/articles/a").json

    assert app.get("/api/articles/a").json != stale


def test_an_evicted_version_never_brings_an_old_entry_back(stub: Stub) -> None:
    cache = SimpleCache()
    app = make(stub, cache)
    first = app.get("/api/articles/a").json
    write(app, surrogates.article("a"))
    app.get("/api/articles/b")

    for key in list(cache._cache):
        if key.startswith("conduit:v:"):
            cache.delete(key)  # evicted
    app.get("/api/articles/b")  # a reader recreates versions

    assert app.get("/api/articles/a").json != first


def test_a_lost_counter_never_brings_old_entries_back(stub: Stub) -> None:
    cache = SimpleCache()
    app = make(stub, cache)
    first = app.get("/api/tags").json
    write(app, "page:/api/tags")
    app.get("/api/tags")

    cache.delete("conduit:seq")  # evicted, or the cache restarted (entries survive)
    write(app, "page:/api/tags")

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
    def __init__(self) -> None:
        super().__init__()
        self.broken = True

    def _check(self) -> None:
        if self.broken:
            raise ConnectionError("cache is down")

    def get(self, key: str) -> Any:
        self._check()
        return super().get(key)

    def get_many(self, *keys: str) -> list[Any]:
        self._check()
        return super().get_many(*keys)

    def set(self, key: str, value: Any, timeout: int | None = None) -> bool:
        self._check()
        return bool(super().set(key, value, timeout))

    def add(self, key: str, value: Any, timeout: int | None = None) -> bool:
        self._check()
        return bool(super().add(key, value, timeout))


def test_a_failing_cache_is_bypassed(stub: Stub) -> None:
    cache = BrokenCache()
    app = make(stub, cache)

    first, second = app.get("/api/tags"), app.get("/api/tags")
    write(app, "page:/api/tags")

    assert first.status_int == second.status_int == 200 and first.json != second.json


def test_a_bump_lost_while_the_cache_was_down_is_delivered_before_the_cache_is_read_again(
    stub: Stub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = BrokenCache()
    cache.broken = False
    owed = tmp_path / "owed"
    app, other_worker = make(stub, cache, owed=owed), make(stub, cache, owed=owed)
    before = other_worker.get("/api/tags").json
    cache.broken = True

    write(app, "page:/api/tags")  # committed; the bump cannot reach the cache
    assert owed.exists()
    cache.broken = False
    monkeypatch.setattr("service.shared_reads.reads.BACKOFF_SECONDS", 0.0)
    app.app.shared._skip_until = other_worker.app.shared._skip_until = 0.0

    after = other_worker.get("/api/tags")  # a worker that never saw the failure

    assert after.json != before and after.headers["X-Cache"] == "miss" and not owed.exists()


def test_while_a_bump_is_owed_the_cache_is_not_read(stub: Stub, tmp_path: Path) -> None:
    cache = BrokenCache()
    cache.broken = False
    owed = tmp_path / "owed"
    app = make(stub, cache, owed=owed)
    app.get("/api/tags")
    cache.broken = True
    write(app, "page:/api/tags")
    cache.broken = False  # back, but this worker still backs off: the debt is not paid yet

    assert "X-Cache" not in app.get("/api/tags").headers and owed.exists()


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

    assert [key for key in stored if ":a:" in key] == []


def test_a_popular_url_is_stored_again_at_its_first_miss_after_a_write(stub: Stub) -> None:
    app = make(stub, min_uses=2)
    for _ in range(3):
        app.get("/api/tags")

    write(app, "page:/api/tags")
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


def test_an_invalid_escape_and_the_replacement_character_are_different_answers(stub: Stub) -> None:
    app = make(stub)
    app.get("/api/articles?tag=%FF")

    assert app.get("/api/articles?tag=%EF%BF%BD").headers["X-Cache"] == "miss"
    assert first_values({"QUERY_STRING": "tag=%FF"}) == {"tag": "%FF"}  # as werkzeug hands it to the view


@pytest.mark.parametrize(("stored", "asked"), [("tag=a%20b", "tag=a+b"), ("tag=%c3%a9", "tag=%C3%A9")])
def test_spellings_of_one_value_share_an_entry(stub: Stub, stored: str, asked: str) -> None:
    app = make(stub)
    app.get(f"/api/articles?{stored}")

    assert app.get(f"/api/articles?{asked}").headers["X-Cache"] == "hit"


def test_the_sqlite_store_bumps_atomically_and_serves_the_same_rules(stub: Stub, tmp_path: Path) -> None:
    cache = SQLiteCache(tmp_path / "cache.db", default_timeout=60)
    app = make(stub, cache)
    page, other = app.get("/api/articles/a").json, app.get("/api/articles/b").json

    write(app, surrogates.article("a"))

    assert app.get("/api/articles/a").json != page
    assert app.get("/api/articles/b").json == other


@pytest.mark.parametrize(
    "query",
    [
        "tag=%FF",
        "tag=%ff&tag=b",
        "t%61g=a+b&limit=5",
        "tag=a%20b%2Bc",
        "tag=%C3%A9&x=&y",
        "tag=%E2%80%A8%00",
        "a=1;b=2&tag=%",
        "tag=%%41&=empty",
        "tag=\u00e9",  # a raw (not percent-encoded) non-ASCII byte pair, as a server hands it over (latin-1)
    ],
)
def test_the_key_reads_the_query_exactly_as_werkzeug_hands_it_to_the_view(query: str) -> None:
    from werkzeug.wrappers import Request

    environ = {"QUERY_STRING": query.encode().decode("latin-1"), "REQUEST_METHOD": "GET"}
    first: dict[str, str] = {}
    for name, value in Request(environ).args.items(multi=True):
        first.setdefault(name, value)

    assert first_values(environ) == first
