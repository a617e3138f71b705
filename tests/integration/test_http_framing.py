"""Request bodies on the wire, as gunicorn hands them over: chunked and with a length alike.

Raw sockets, because HTTP client libraries will not send a malformed chunk.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.integration.servers import Gunicorn, gunicorn

pytestmark = pytest.mark.slow

#: The body size limit of the server under test.
MAX_BODY = 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gunicorn]:
    """gunicorn, 2 workers, one trusted proxy hop (so a test can speak from many addresses)."""
    tmp: Path = tmp_path_factory.mktemp("framing")
    with gunicorn(
        tmp, workers=2, trusted_proxy_hops="1", ratelimit_login="10/minute", max_body_bytes=str(MAX_BODY)
    ) as running:
        yield running


def send(
    server: Gunicorn,
    method: str,
    path: str,
    body: bytes,
    *,
    chunks: list[bytes] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """Send one request on its own connection; ``chunks`` (already framed) replace a length-framed body."""
    where = urlsplit(server.base)
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: {where.netloc}",
        "Connection: close",
        "Content-Type: application/json",
    ]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if chunks is None:
        lines.append(f"Content-Length: {len(body)}")
        payload = body
    else:
        lines.append("Transfer-Encoding: chunked")
        payload = b"".join(chunks)
    with socket.create_connection((where.hostname, where.port), timeout=30) as sock:
        sock.sendall("\r\n".join(lines).encode() + b"\r\n\r\n" + payload)
        received = b""
        while part := sock.recv(65536):
            received += part
    head, _, content = received.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(content) if content.strip() else None


def chunked(data: bytes, size: int = 65536) -> list[bytes]:
    """``data`` as well-formed chunks, with the final empty chunk."""
    parts = [b"%x\r\n%s\r\n" % (len(data[i : i + size]), data[i : i + size]) for i in range(0, len(data), size)]
    return [*parts, b"0\r\n\r\n"]


def register(server: Gunicorn, name: str) -> str:
    reply = server.call(
        "POST", "/api/users", {"user": {"username": name, "email": f"{name}@x.org", "password": "password1"}}
    )
    assert reply.status == 201
    return str(reply.body["user"]["token"])


def test_a_well_formed_chunked_body_is_read_like_one_with_a_length(server: Gunicorn) -> None:
    body = json.dumps({"user": {"username": "chunky", "email": "chunky@x.org", "password": "password1"}}).encode()

    status, reply = send(server, "POST", "/api/users", b"", chunks=chunked(body, 7))

    assert status == 201 and reply["user"]["username"] == "chunky"


@pytest.mark.parametrize("path", ["/api/users/login", "/api/articles"])
def test_a_malformed_chunk_is_a_400_in_the_realworld_shape(server: Gunicorn, path: str) -> None:
    token = register(server, f"malformed{len(path)}")

    status, reply = send(
        server, "POST", path, b"", chunks=[b"zz\r\n{}\r\n0\r\n\r\n"], headers={"Authorization": f"Token {token}"}
    )

    assert status == 400 and reply == {"errors": {"body": ["could not be read"]}}
    assert "Traceback" not in server.log.read_text()


def test_a_chunked_body_over_the_limit_is_413_not_truncated(server: Gunicorn) -> None:
    status, reply = send(server, "POST", "/api/users/login", b"", chunks=chunked(b"x" * (2 * MAX_BODY)))

    assert status == 413 and reply == {"errors": {"body": ["is too large"]}}


def test_valid_json_followed_by_garbage_past_the_limit_is_refused_and_nothing_is_created(server: Gunicorn) -> None:
    token = register(server, "garbage")
    article = {"article": {"title": "Cut short", "description": "d", "body": "b"}}
    valid = json.dumps(article).encode()
    padded = valid + b" " * (MAX_BODY - len(valid))  # exactly the limit: valid JSON on its own

    status, _ = send(
        server,
        "POST",
        "/api/articles",
        b"",
        chunks=chunked(padded + b"garbage"),
        headers={"Authorization": f"Token {token}"},
    )

    assert status == 413
    assert server.call("GET", "/api/articles/cut-short").status == 404


def test_a_body_at_the_limit_is_accepted_in_both_framings(server: Gunicorn) -> None:
    login = json.dumps({"user": {"email": "nobody@x.org", "password": "password1"}}).encode()
    padded = login + b" " * (MAX_BODY - len(login))

    by_length, _ = send(server, "POST", "/api/users/login", padded, headers={"X-Forwarded-For": "10.9.0.1"})
    by_chunks, _ = send(
        server, "POST", "/api/users/login", b"", chunks=chunked(padded), headers={"X-Forwarded-For": "10.9.0.2"}
    )

    assert by_length == by_chunks == 401


def test_chunked_logins_count_against_the_per_account_limit(server: Gunicorn) -> None:
    register(server, "target")
    guess = json.dumps({"user": {"email": "target@x.org", "password": "wrong-guess"}}).encode()

    statuses = [
        send(
            server, "POST", "/api/users/login", b"", chunks=chunked(guess), headers={"X-Forwarded-For": f"10.0.0.{n}"}
        )[0]
        for n in range(1, 15)
    ]

    assert statuses[:10] == [401] * 10 and set(statuses[10:]) == {429}
