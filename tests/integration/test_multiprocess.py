"""Rate limits and the response cache are right across gunicorn workers (and hosts, via Redis)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.integration.servers import Gunicorn, gunicorn, memcached_server, redis_server

pytestmark = pytest.mark.slow

#: Limits high enough not to get in the way of tests about something else.
ROOMY = {
    "ratelimit_default": "100000/minute",
    "ratelimit_login": "100000/minute",
    "ratelimit_register": "1000/minute",
    "ratelimit_writes": "1000/minute",
}


@pytest.fixture(params=["host-local", "redis", "memcached"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Settings for the default shared storages (SQLite files), for Redis, or memcached counters."""
    if request.param == "host-local":
        yield {}
    elif request.param == "redis":
        with redis_server(tmp_path) as node:
            yield {"ratelimit_storage_uri": node.url, "cache_url": node.url}
    else:
        with memcached_server(tmp_path) as uri:
            yield {"ratelimit_storage_uri": uri}


#: A failed login spends ~0.1 s in argon2: it keeps one worker busy, so the others must accept.
SLOW = ("POST", "/api/users/login", {"user": {"email": "nobody@x.org", "password": "wrong-password"}})


def spread(server: Gunicorn, n: int, method: str, path: str, threads: int = 6) -> list:  # type: ignore[type-arg]
    """``n`` concurrent requests, with slow logins mixed in so that every worker takes some."""
    with ThreadPoolExecutor(threads) as pool:
        ballast = [pool.submit(server.call, *SLOW) for _ in range(3)]
        replies = list(pool.map(lambda _: server.call(method, path), range(n)))
        for future in ballast:
            future.result()
    return replies


def test_requests_over_all_workers_are_limited_at_exactly_the_limit(tmp_path: Path, storage: dict[str, str]) -> None:
    with gunicorn(
        tmp_path, workers=2, ratelimit_default="40/minute", ratelimit_login="1000/minute", **storage
    ) as server:
        calls = [SLOW if n % 4 == 0 else ("GET", "/api/tags", None) for n in range(80)]
        with ThreadPoolExecutor(6) as pool:
            replies = list(pool.map(lambda call: server.call(*call), calls))
        pids = server.worker_pids()

    # Logins answer 401 (wrong password) when allowed; every request counts against the default limit.
    assert Counter(r.status == 429 for r in replies) == {False: 40, True: 40}
    assert len(pids) == 2  # both workers served, and together they allowed 40, not 80


def test_a_write_on_one_worker_is_never_followed_by_a_stale_read_on_another(
    tmp_path: Path, storage: dict[str, str]
) -> None:
    with gunicorn(tmp_path, workers=2, cache_ttl="300", **ROOMY, **storage) as server:
        token = server.call(
            "POST", "/api/users", {"user": {"username": "writer", "email": "writer@x.org", "password": "password1"}}
        ).body["user"]["token"]
        seen_hits = 0
        for round_ in range(1, 5):
            spread(server, 12, "GET", "/api/articles")  # fill every worker's view of the cache
            slug = server.call(
                "POST",
                "/api/articles",
                {"article": {"title": f"Round {round_}", "description": "d", "body": "b"}},
                token=token,
            ).body["article"]["slug"]

            after = spread(server, 12, "GET", "/api/articles")

            assert {r.body["articlesCount"] for r in after} == {round_}
            assert {r.body["articles"][0]["slug"] for r in after} == {slug}
            seen_hits += sum(r.headers.get("X-Cache") == "hit" for r in after)

            server.call("PUT", f"/api/articles/{slug}", {"article": {"description": f"edited {round_}"}}, token=token)
            edited = spread(server, 12, "GET", f"/api/articles/{slug}")
            assert {r.body["article"]["description"] for r in edited} == {f"edited {round_}"}
        pids = server.worker_pids()

    assert seen_hits > 0  # the cache was really serving, and still never stale
    assert len(pids) == 2


def test_requests_keep_being_served_when_redis_stops(tmp_path: Path) -> None:
    with (
        redis_server(tmp_path) as node,
        gunicorn(tmp_path, workers=2, ratelimit_storage_uri=node.url, cache_url=node.url, **ROOMY) as server,
    ):
        before = spread(server, 10, "GET", "/api/articles")
        node.stop()
        during = spread(server, 20, "GET", "/api/articles")
        writes = server.call(
            "POST", "/api/users", {"user": {"username": "late", "email": "late@x.org", "password": "password1"}}
        )

    assert {r.status for r in before} == {200}
    assert {r.status for r in during} == {200}
    assert writes.status == 201
