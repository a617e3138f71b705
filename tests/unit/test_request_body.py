"""The request-body layer against a stub app: one size rule and one error shape for every framing."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from service.middleware.body import RequestBodyMiddleware


class Echo:
    """Answers with the body it was given, read the way the dispatcher reads it."""

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [body]


class BrokenChunks(io.RawIOBase):
    """What a server's de-chunking reader does on a malformed chunk size."""

    def read(self, size: int = -1) -> bytes:
        raise ValueError("Invalid chunk size: 'zz'")


#: How gunicorn, Granian and Waitress frame a chunked body: de-chunked, and saying so.
CHUNKED = {"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input_terminated": True}


def call(environ_extra: dict[str, Any], stream: Any, max_bytes: int = 10) -> tuple[str, bytes]:
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/api/articles", "wsgi.input": stream, **environ_extra}
    started: list[str] = []
    body = RequestBodyMiddleware(Echo(), max_bytes)(environ, lambda status, headers: started.append(status))
    return started[0], b"".join(body)


def test_a_chunked_body_reaches_the_app_framed_by_its_length() -> None:
    status, body = call(CHUNKED, io.BytesIO(b"0123456789"))

    assert status == "200 OK" and body == b"0123456789"


@pytest.mark.parametrize("framing", [CHUNKED, {"CONTENT_LENGTH": "11"}])
def test_a_body_over_the_limit_is_413_in_either_framing(framing: dict[str, str]) -> None:
    status, body = call(framing, io.BytesIO(b"0123456789" + b"x"))

    assert status.startswith("413") and json.loads(body) == {"errors": {"body": ["is too large"]}}


def test_an_unreadable_body_is_400() -> None:
    status, body = call(CHUNKED, BrokenChunks())

    assert status.startswith("400") and json.loads(body) == {"errors": {"body": ["could not be read"]}}


@pytest.mark.parametrize("length", ["-1", "ten", "1e3"])
def test_an_invalid_content_length_is_400(length: str) -> None:
    status, _ = call({"CONTENT_LENGTH": length}, io.BytesIO(b"x"))

    assert status.startswith("400")


def test_a_body_shorter_than_its_content_length_is_400() -> None:
    status, body = call({"CONTENT_LENGTH": "8"}, io.BytesIO(b"abc"))

    assert status.startswith("400") and "shorter" in body.decode()


def test_a_chunked_body_from_a_server_that_neither_de_chunks_nor_says_so_is_411() -> None:
    status, body = call({"HTTP_TRANSFER_ENCODING": "chunked"}, io.BytesIO(b""))

    assert status.startswith("411")
    assert json.loads(body) == {"errors": {"body": ["must come with a Content-Length on this server"]}}
