"""The route table: one entry per operation, matched the way the contract needs, read by every layer."""

from __future__ import annotations

from typing import Any

import pytest
from werkzeug.exceptions import HTTPException
from werkzeug.test import EnvironBuilder

from service import route_table
from service.router import Router

ROUTER = Router(route_table.ALL_ROUTES)


def environ(method: str, path: str) -> dict[str, Any]:
    return EnvironBuilder(path=path, method=method).get_environ()


def test_every_route_endpoint_names_its_view() -> None:
    for route in route_table.ROUTES:
        module = route.view.__module__.rsplit(".", 1)[-1]
        assert route.endpoint == f"{module}.{route.view.__name__}"


def test_routing_table_covers_the_nineteen_realworld_operations_and_logout_once() -> None:
    pairs = {(r.method, r.path) for r in route_table.ROUTES}

    assert len(route_table.ROUTES) == len(pairs) == 19 + 1


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
    route, _ = ROUTER.match(environ("GET", path))

    assert route.endpoint == endpoint


@pytest.mark.parametrize(
    ("method", "path", "cacheable"),
    [
        ("GET", "/api/articles", True),
        ("GET", "/api/articles/feed", False),
        ("GET", "/api/articles/a-slug/comments", True),
        ("HEAD", "/api/tags", True),
        ("GET", "/api/user", False),
        ("GET", "/api/nowhere", False),
        ("GET", "/readyz", False),
    ],
)
def test_only_routes_declared_cacheable_are_cacheable(method: str, path: str, cacheable: bool) -> None:
    assert (ROUTER.shares(environ(method, path)) is not None) is cacheable


@pytest.mark.parametrize(
    ("method", "path", "scopes"),
    [
        ("POST", "/api/users/login", ("all", "login")),
        ("POST", "/api/users/login/", ("all", "login")),
        ("POST", "/api/users", ("all", "register")),
        ("PUT", "/api/articles/a-slug", ("all", "writes")),
        ("GET", "/api/articles", ("all",)),
        ("GET", "/api/nowhere", ("all",)),  # a scan counts too
        ("GET", "/healthz", ()),
        ("OPTIONS", "/api/articles", ()),
    ],
)
def test_a_request_counts_against_the_limits_its_route_declares(method: str, path: str, scopes: tuple) -> None:
    assert ROUTER.limit_scopes(environ(method, path)) == scopes


def test_a_url_is_matched_once_per_request() -> None:
    env = environ("GET", "/api/articles/a-slug")
    ROUTER.match(env)
    env["PATH_INFO"] = "/api/tags"  # a later layer sees the first match, not a new one

    assert ROUTER.route_for(env) is not None and ROUTER.route_for(env).endpoint == "articles.get_article"  # type: ignore[union-attr]


def test_a_remembered_match_answers_only_the_same_path_and_method() -> None:
    router = Router(route_table.ALL_ROUTES)
    first = router.match(environ("GET", "/api/articles/a-slug"))
    again = router.match(environ("GET", "/api/articles/a-slug"))

    assert again == first and router.route_for(environ("DELETE", "/api/articles/a-slug")).endpoint == (  # type: ignore[union-attr]
        "articles.delete_article"
    )
    assert router.match(environ("GET", "/api/articles/other"))[1] == {"slug": "other"}


def test_a_refusal_is_never_remembered_so_its_traceback_never_grows() -> None:
    router = Router(route_table.ALL_ROUTES)
    refusals = []
    for _ in range(2):
        with pytest.raises(HTTPException) as refused:
            router.match(environ("GET", "/api/nowhere"))
        refusals.append(refused.value)

    assert refusals[0] is not refusals[1] and refusals[0].code == refusals[1].code == 404
