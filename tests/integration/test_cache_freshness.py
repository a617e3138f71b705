"""The response cache across real processes: never stale after any kind of write, and still useful.

Each test writes through one request and then reads at once from every worker
(or every service process sharing one Redis): no answer may leave out the write,
and pages the write did not change must still come from the cache.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from service.shared_reads.delivery import BOUND
from tests.conftest import TEST_SECRET
from tests.integration.servers import Gunicorn, Reply, gunicorn, redis_server
from tests.integration.test_multiprocess import ROOMY as MULTIPROCESS_ROOMY

pytestmark = pytest.mark.slow

#: The suite's roomy limits, a long TTL, and every miss stored: each worker holds every page at once.
ROOMY = {**MULTIPROCESS_ROOMY, "cache_ttl": "300", "cache_min_uses": "1", "secret_key": TEST_SECRET}


def read_everywhere(servers: list[Gunicorn], path: str, n: int = 12, token: str | None = None) -> list[Reply]:
    """``n`` concurrent reads per server, each on a new connection (so every worker takes some)."""
    with ThreadPoolExecutor(6) as pool:
        return list(
            pool.map(lambda i: servers[i % len(servers)].call("GET", path, token=token), range(n * len(servers)))
        )


def register(server: Gunicorn, name: str) -> str:
    user = {"user": {"username": name, "email": f"{name}@x.org", "password": "password1"}}
    return str(server.call("POST", "/api/users", user).body["user"]["token"])


def publish(server: Gunicorn, token: str, title: str, tags: list[str]) -> str:
    article = {"article": {"title": title, "description": "d", "body": "b", "tagList": tags}}
    return str(server.call("POST", "/api/articles", article, token=token).body["article"]["slug"])


Check = Callable[[Reply], bool]


def write_then_read_everywhere(
    servers: list[Gunicorn],
    write: Callable[[], Reply],
    reads: dict[str, Check],
    untouched: list[str],
    reader: str | None = None,
) -> tuple[int, int]:
    """Warm every page on every worker, write once, then read everywhere at once.

    :param reader: a token: each read is also made by this signed-in reader (a shared page with the
        viewer's flags written in), and must be as fresh.
    :returns: (stale answers among the reads, hits among the untouched pages' reads).
    """
    for path in [*reads, *untouched]:
        read_everywhere(servers, path, n=4)
        if reader:
            read_everywhere(servers, path, n=2, token=reader)
    assert write().status < 300
    stale = 0
    for path, fresh in reads.items():
        stale += sum(not fresh(reply) for reply in read_everywhere(servers, path))
        if reader:
            stale += sum(not fresh(reply) for reply in read_everywhere(servers, path, n=4, token=reader))
    hits = sum(reply.headers.get("X-Cache") == "hit" for path in untouched for reply in read_everywhere(servers, path))
    return stale, hits


def run_every_kind_of_write(servers: list[Gunicorn]) -> None:
    a, b = servers[0], servers[-1]
    jake, anne = register(a, "jake"), register(b, "anne")
    one = publish(a, jake, "One", ["green"])
    two = publish(b, anne, "Two", ["blue"])
    comments_of = f"/api/articles/{one}/comments"

    def count_is(n: int) -> Check:
        return lambda r: r.status == 200 and r.body["article"]["favoritesCount"] == n

    results = {
        "favorite": write_then_read_everywhere(
            servers,
            lambda: b.call("POST", f"/api/articles/{one}/favorite", token=anne),
            {
                f"/api/articles/{one}": count_is(1),
                "/api/articles?tag=green": lambda r: r.body["articles"][0]["favoritesCount"] == 1,
                "/api/articles?favorited=anne": lambda r: r.body["articlesCount"] == 1,
            },
            untouched=[f"/api/articles/{two}", "/api/articles?tag=blue", comments_of],
        ),
        "comment": write_then_read_everywhere(
            servers,
            lambda: a.call("POST", comments_of, {"comment": {"body": "first"}}, token=anne),
            {comments_of: lambda r: [c["body"] for c in r.body["comments"]] == ["first"]},
            untouched=[f"/api/articles/{one}", f"/api/articles/{two}", "/api/articles", "/api/tags"],
        ),
        "edit": write_then_read_everywhere(
            servers,
            lambda: b.call("PUT", f"/api/articles/{one}", {"article": {"body": "edited"}}, token=jake),
            {
                f"/api/articles/{one}": lambda r: r.body["article"]["body"] == "edited",
                "/api/articles?author=jake": lambda r: r.body["articles"][0]["slug"] == one,
            },
            untouched=[f"/api/articles/{two}", comments_of, "/api/tags"],
        ),
        "profile": write_then_read_everywhere(
            servers,
            lambda: a.call("PUT", "/api/user", {"user": {"bio": "gardener"}}, token=anne),
            {
                "/api/profiles/anne": lambda r: r.body["profile"]["bio"] == "gardener",
                f"/api/articles/{two}": lambda r: r.body["article"]["author"]["bio"] == "gardener",
                comments_of: lambda r: r.body["comments"][0]["author"]["bio"] == "gardener",
            },
            untouched=[f"/api/articles/{one}", "/api/articles?tag=green", "/api/profiles/jake"],
        ),
        "delete": write_then_read_everywhere(
            servers,
            lambda: b.call("DELETE", f"/api/articles/{two}", token=anne),
            {
                f"/api/articles/{two}": lambda r: r.status == 404,
                "/api/articles": lambda r: [x["slug"] for x in r.body["articles"]] == [one],
                "/api/articles?tag=blue": lambda r: r.body["articlesCount"] == 0,
                "/api/tags": lambda r: r.body["tags"] == ["green"],
            },
            untouched=[f"/api/articles/{one}", comments_of, "/api/profiles/jake"],
        ),
    }

    # A title change renames the article: its old URL answers 404 at once, anonymous and signed in, never a
    # cached 200, and every list shows the new slug.
    old = one
    results["rename"] = write_then_read_everywhere(
        servers,
        lambda: a.call("PUT", f"/api/articles/{old}", {"article": {"title": "One renamed"}}, token=jake),
        {
            f"/api/articles/{old}": lambda r: r.status == 404,
            f"/api/articles/{old}/comments": lambda r: r.status == 404,
            "/api/articles?author=jake": lambda r: [x["title"] for x in r.body["articles"]] == ["One renamed"],
            "/api/articles?tag=green": lambda r: r.body["articles"][0]["slug"].startswith("one-renamed-"),
        },
        untouched=["/api/profiles/jake", "/api/profiles/anne"],
        reader=anne,
    )
    one = a.call("GET", "/api/articles?author=jake").body["articles"][0]["slug"]
    results["unfavorite"] = write_then_read_everywhere(
        servers,
        lambda: b.call("DELETE", f"/api/articles/{one}/favorite", token=anne),
        {
            f"/api/articles/{one}": lambda r: r.body["article"]["favoritesCount"] == 0,
            "/api/articles?favorited=anne": lambda r: r.body["articlesCount"] == 0,
        },
        untouched=["/api/profiles/jake", "/api/tags"],
        reader=anne,
    )
    # A username change: the old profile URL answers 404, the new one 200, and every page naming the author
    # names the new one.
    results["username"] = write_then_read_everywhere(
        servers,
        lambda: b.call("PUT", "/api/user", {"user": {"username": "jacob"}}, token=jake),
        {
            "/api/profiles/jake": lambda r: r.status == 404,
            "/api/profiles/jacob": lambda r: r.status == 200 and r.body["profile"]["username"] == "jacob",
            f"/api/articles/{one}": lambda r: r.body["article"]["author"]["username"] == "jacob",
            "/api/articles?author=jake": lambda r: r.body["articlesCount"] == 0,
            "/api/articles?author=jacob": lambda r: r.body["articlesCount"] == 1,
            "/api/articles?tag=green": lambda r: r.body["articles"][0]["author"]["username"] == "jacob",
        },
        untouched=["/api/profiles/anne", "/api/tags"],
        reader=anne,
    )
    results["follow"] = write_then_read_everywhere(
        servers,
        lambda: a.call("POST", "/api/profiles/jacob/follow", token=anne),
        {},
        untouched=[f"/api/articles/{one}", "/api/profiles/jacob"],
    )
    followed = {
        "/api/profiles/jacob": lambda r: r.body["profile"]["following"] is True,
        f"/api/articles/{one}": lambda r: r.body["article"]["author"]["following"] is True,
        "/api/articles?tag=green": lambda r: r.body["articles"][0]["author"]["following"] is True,
    }
    results["follow"] = (
        sum(
            not check(reply)
            for path, check in followed.items()
            for reply in read_everywhere(servers, path, n=4, token=anne)
        ),
        results["follow"][1],
    )

    assert {kind: stale for kind, (stale, _) in results.items()} == dict.fromkeys(results, 0)
    assert all(hits > 0 for _, hits in results.values()), results  # unrelated pages stayed in the cache


def test_every_kind_of_write_is_seen_at_once_by_three_workers_sharing_the_host_local_cache(tmp_path: Path) -> None:
    with gunicorn(tmp_path, workers=3, **ROOMY) as server:
        run_every_kind_of_write([server])
        assert len(server.worker_pids()) == 3


def test_every_kind_of_write_is_seen_at_once_by_two_services_sharing_one_redis(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'shared.db'}"
    with ExitStack() as stack:
        node = stack.enter_context(redis_server(tmp_path))
        hosts = []
        for name in ("host-a", "host-b"):  # one after the other: the first migrates the shared database
            (tmp_path / name).mkdir()
            hosts.append(
                stack.enter_context(
                    gunicorn(tmp_path / name, workers=2, database_url=database, cache_url=node.url, **ROOMY)
                )
            )
        run_every_kind_of_write(hosts)


@pytest.fixture
def frozen_redis(tmp_path: Path) -> Iterator[Any]:
    with redis_server(tmp_path) as node:
        yield node
        node.process.send_signal(signal.SIGCONT)  # never leave it stopped


def test_a_write_while_redis_is_stopped_commits_and_nothing_stale_is_served_once_it_is_back(
    tmp_path: Path, frozen_redis: Any
) -> None:
    """Writes never depend on the shared cache: the journal holds what Redis missed (issue 32)."""
    node = frozen_redis
    with gunicorn(tmp_path, workers=2, cache_url=node.url, **ROOMY) as server:
        token = register(server, "jake")
        slug = publish(server, token, "One", [])
        page = f"/api/articles/{slug}"
        warm = read_everywhere([server], page)
        assert {r.body["article"]["favoritesCount"] for r in warm} == {0}
        assert any(r.headers.get("X-Cache") == "hit" for r in warm)

        node.process.send_signal(signal.SIGSTOP)  # Redis stops answering: a partition, its data (the entry) intact
        favorited = server.call("POST", f"{page}/favorite", token=token)
        during = read_everywhere([server], page, n=4)
        commented = server.call("POST", f"{page}/comments", {"comment": {"body": "while down"}}, token=token)
        time.sleep(BOUND + 0.2)  # past the staleness bound: within it a worker may still serve the old entry
        node.process.send_signal(signal.SIGCONT)

        after = read_everywhere([server], page, n=20)  # at once: the entry in Redis still says 0
        time.sleep(2.5)  # past every worker's back-off
        later = read_everywhere([server], page, n=10)
        comments = server.call("GET", f"{page}/comments")

    assert (favorited.status, favorited.body["article"]["favoritesCount"]) == (200, 1)
    assert commented.status == 201
    assert {(r.status, r.body["article"]["favoritesCount"]) for r in during} == {(200, 1)}
    assert {r.body["article"]["favoritesCount"] for r in after} == {1}  # never the entry from before the write
    assert {r.body["article"]["favoritesCount"] for r in later} == {1}
    assert any(r.headers.get("X-Cache") == "hit" for r in later)  # and the cache is in use again
    assert [c["body"] for c in comments.body["comments"]] == ["while down"]
