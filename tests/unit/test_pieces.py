"""Small pure pieces: slugs, wire timestamps, error bodies, message flattening, routing."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from schemas.base import WireDateTime, camelcase
from service import routing
from service.errors import ApiError
from service.models import later_than
from service.ops.articles import make_slug
from service.web import Router, flatten


def test_make_slug_is_kebab_case_with_a_random_suffix() -> None:
    assert re.fullmatch(r"hello-world-[a-z0-9]{6}", make_slug("Hello, World!"))
    assert make_slug("same") != make_slug("same")


def test_make_slug_of_a_title_without_letters_is_just_the_suffix() -> None:
    assert re.fullmatch(r"[a-z0-9]{6}", make_slug("!!!"))


def test_wire_datetime_is_utc_with_milliseconds_and_z() -> None:
    value = datetime(2026, 1, 2, 3, 4, 5, 678999, tzinfo=UTC)

    assert WireDateTime()._serialize(value, None, None) == "2026-01-02T03:04:05.678Z"


def test_later_than_moves_forward_on_the_wire_within_one_millisecond() -> None:
    created = datetime(2026, 1, 1, 0, 0, 0, 500, tzinfo=UTC)

    updated = later_than(created, now=created + timedelta(microseconds=100))

    assert updated > created
    assert updated.microsecond // 1000 > created.microsecond // 1000


def test_later_than_keeps_a_clock_that_is_already_ahead() -> None:
    created = datetime(2026, 1, 1, tzinfo=UTC)
    now = created + timedelta(seconds=5)

    assert later_than(created, now=now) == now


def test_camelcase_converts_snake_case() -> None:
    assert camelcase("favorites_count") == "favoritesCount"
    assert camelcase("tag_list") == "tagList"
    assert camelcase("body") == "body"


def test_flatten_folds_envelopes_and_list_indexes() -> None:
    messages = {"article": {"tagList": {0: ["must be a string"], 2: ["must be a string"]}, "title": ["x"]}}

    assert flatten(messages) == {"tagList": ["must be a string"], "title": ["x"]}


def test_flatten_reports_whole_object_errors_under_its_key() -> None:
    assert flatten({"_schema": ["must be an object"]}) == {"body": ["must be an object"]}
    assert flatten({"user": {"_schema": ["must be an object"]}}) == {"user": ["must be an object"]}


@pytest.mark.parametrize(
    ("error", "status", "body"),
    [
        (ApiError.taken("username"), 409, {"username": ["has already been taken"]}),
        (ApiError.unauthorized("is missing"), 401, {"token": ["is missing"]}),
        (ApiError.bad_credentials(), 401, {"credentials": ["invalid"]}),
        (ApiError.forbidden("article"), 403, {"article": ["forbidden"]}),
        (ApiError.not_found("comment"), 404, {"comment": ["not found"]}),
        (ApiError.too_many_requests(3), 429, {"rate_limit": ["exceeded"]}),
        (ApiError.unavailable("database"), 503, {"database": ["unavailable"]}),
    ],
)
def test_error_constructors_give_the_contract_body(error: ApiError, status: int, body: dict) -> None:
    assert error.status == status
    assert error.to_body() == {"errors": body}


def test_too_many_requests_carries_retry_after() -> None:
    assert ApiError.too_many_requests(7).headers == {"Retry-After": "7"}


def test_every_route_endpoint_names_its_view() -> None:
    for route in routing.ROUTES:
        module = route.view.__module__.rsplit(".", 1)[-1]
        assert route.endpoint == f"{module}.{route.view.__name__}"


def test_routing_table_covers_the_nineteen_realworld_operations_and_logout_once() -> None:
    pairs = {(r.method, r.path) for r in routing.ROUTES}

    assert len(routing.ROUTES) == len(pairs) == 19 + 1


@pytest.mark.parametrize(
    ("path", "endpoint"),
    [
        ("/api/articles/feed", "articles.get_articles_feed"),
        ("/api/articles/feed/", "articles.get_articles_feed"),
        ("/api/articles/some-slug", "articles.get_article"),
        ("/api/articles/s/comments", "comments.get_article_comments"),
    ],
)
def test_url_map_matches_feed_before_slug(path: str, endpoint: str) -> None:
    adapter = Router(routing.ALL_ROUTES).url_map.bind("localhost")

    assert adapter.match(path, method="GET")[0] == endpoint
