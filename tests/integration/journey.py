"""One client's journey through a running server, the same for every WSGI host the docs name.

Register, log in, write, favorite, comment, follow and read the feed; the
expected 4xx; a chunked body; an oversized one (413); a rate-limit refusal;
and a cached answer that a write forgets and the next read caches again. Every
request goes on its own connection, under ``base`` (which may carry a mount
prefix such as ``/conduit``). The server must run with
``CONDUIT_CACHE_MIN_USES=1``, ``CONDUIT_MAX_BODY_BYTES=65536``,
``CONDUIT_RATELIMIT_LOGIN=5/minute`` and the metrics on, read with
:data:`METRICS_TOKEN` (:data:`SERVER_SETTINGS`), with a ``CONDUIT_METRICS_DIR``
where the server runs several processes: the journey checks that ``/metrics``
counted each of its requests exactly once, whichever process served it.
"""

from __future__ import annotations

import http.client
import json
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from prometheus_client.parser import text_string_to_metric_families

#: The bearer token the journey reads /metrics with.
METRICS_TOKEN = "journey-metrics-token-0123456789"
#: What the journey expects of the server it runs through.
SERVER_SETTINGS = {
    "CONDUIT_CACHE_MIN_USES": "1",
    "CONDUIT_MAX_BODY_BYTES": "65536",
    "CONDUIT_RATELIMIT_LOGIN": "5/minute",
    "CONDUIT_METRICS_TOKEN": METRICS_TOKEN,
}


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any


def _send(
    base: str,
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str | None = None,
    raw: bytes | None = None,
    chunked: bool = False,
) -> Reply:
    """One request on a new connection; ``raw`` bytes instead of JSON, sent in chunks if ``chunked``."""
    where = urlsplit(base)
    payload = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    headers = {"Content-Type": "application/json"} if payload is not None else {}
    if token:
        headers["Authorization"] = f"Token {token}"
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=30)
    try:
        if chunked and payload is not None:
            connection.putrequest(method, where.path + path)
            for name, value in {**headers, "Transfer-Encoding": "chunked"}.items():
                connection.putheader(name, value)
            connection.endheaders()
            for start in range(0, len(payload), 64):
                piece = payload[start : start + 64]
                connection.send(b"%x\r\n%s\r\n" % (len(piece), piece))
            connection.send(b"0\r\n\r\n")
        else:
            connection.request(method, where.path + path, payload, headers)
        response = connection.getresponse()
        data = response.read()
        reply_headers = {name.lower(): value for name, value in response.getheaders()}
    finally:
        connection.close()
    parsed = json.loads(data) if data and reply_headers.get("content-type", "").startswith("application/json") else data
    return Reply(response.status, reply_headers, parsed)


def _expect(reply: Reply, status: int, what: str) -> Reply:
    assert reply.status == status, f"{what}: expected {status}, got {reply.status} {reply.body!r}"
    return reply


def requests_counted(base: str) -> int:
    """How many requests the server's ``/metrics`` says it has answered (all routes, methods, statuses)."""
    request = urllib.request.Request(f"{base}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read().decode()
    return int(
        sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "conduit_http_requests_total"
        )
    )


def run(base: str) -> dict[str, Any]:
    """The journey; raises AssertionError at the first step that goes wrong. Returns what it saw."""
    tag = uuid.uuid4().hex[:8]
    alice, bob = f"alice{tag}", f"bob{tag}"
    counted_before = requests_counted(base)
    sent = 0

    def send(*args: Any, **kwargs: Any) -> Reply:
        nonlocal sent
        sent += 1
        return _send(*args, **kwargs)

    def register(name: str, chunked: bool = False) -> str:
        user = {"user": {"username": name, "email": f"{name}@example.org", "password": "password123"}}
        reply = send(base, "POST", "/api/users", raw=json.dumps(user).encode(), chunked=chunked)
        return str(_expect(reply, 201, f"register {name} (chunked: {chunked})").body["user"]["token"])

    register(alice)
    bob_token = register(bob, chunked=True)  # a chunked body, read like one with a length
    login = {"user": {"email": f"{alice}@example.org", "password": "password123"}}
    alice_token = _expect(send(base, "POST", "/api/users/login", login), 200, "login").body["user"]["token"]

    article = {"article": {"title": f"Journey {tag}", "description": "d", "body": "b", "tagList": [tag]}}
    slug = _expect(send(base, "POST", "/api/articles", article, token=alice_token), 201, "write").body["article"][
        "slug"
    ]
    page = f"/api/articles/{slug}"
    _expect(send(base, "GET", page), 200, "first read")
    cached = _expect(send(base, "GET", page), 200, "second read")
    favorited = _expect(send(base, "POST", f"{page}/favorite", token=bob_token), 200, "favorite")
    after_write = _expect(send(base, "GET", page), 200, "read after the favorite")
    cached_again = _expect(send(base, "GET", page), 200, "read again")
    said = send(base, "POST", f"{page}/comments", {"comment": {"body": "hi"}}, token=bob_token)
    comment = _expect(said, 201, "comment")
    comments = _expect(send(base, "GET", f"{page}/comments"), 200, "comments").body["comments"]
    _expect(send(base, "POST", f"/api/profiles/{alice}/follow", token=bob_token), 200, "follow")
    feed = _expect(send(base, "GET", "/api/articles/feed", token=bob_token), 200, "feed").body["articles"]

    not_found = _expect(send(base, "GET", "/api/articles/no-such-article"), 404, "unknown article")
    unauthorized = _expect(send(base, "POST", "/api/articles", article), 401, "write without a token")
    invalid = _expect(send(base, "POST", "/api/articles", {"article": {}}, token=alice_token), 422, "invalid write")
    too_large = _expect(
        send(base, "POST", "/api/users/login", raw=b'{"user": "' + b"x" * 70_000 + b'"}'), 413, "oversized body"
    )
    refused = [send(base, "POST", "/api/users/login", login).status for _ in range(6)]
    limited = _expect(send(base, "POST", "/api/users/login", login), 429, "login over the limit")

    assert cached.headers.get("x-cache") == "hit", cached.headers
    assert favorited.body["article"]["favoritesCount"] == 1
    assert after_write.body["article"]["favoritesCount"] == 1  # the write forgot the cached answer
    assert cached_again.headers.get("x-cache") == "hit" and cached_again.body["article"]["favoritesCount"] == 1
    assert [c["id"] for c in comments] == [comment.body["comment"]["id"]]
    assert [a["slug"] for a in feed] == [slug]
    assert not_found.body == {"errors": {"article": ["not found"]}}
    assert unauthorized.body == {"errors": {"token": ["is missing"]}}
    assert "title" in invalid.body["errors"]
    assert too_large.body == {"errors": {"body": ["is too large"]}}
    assert 429 in refused and int(limited.headers["retry-after"]) > 0
    assert requests_counted(base) - counted_before == sent, "/metrics did not count each request once"
    return {"slug": slug, "statuses_of_repeated_logins": refused, "requests": sent}
