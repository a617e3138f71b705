"""Request bodies read once, with one size rule, whatever their framing.

A body comes with a ``Content-Length`` or chunked (``Transfer-Encoding:
chunked``, which gunicorn, Granian, Waitress and werkzeug's server de-chunk
themselves, saying so with ``wsgi.input_terminated``; gunicorn and Granian
leave ``CONTENT_LENGTH`` unset). uWSGI does not: its ``wsgi.input`` is empty
for a chunked body, which the app reads with ``uwsgi.chunked_read()``
instead. A server that does neither cannot hand the app a chunked body at all,
and the client is told so: ``411`` (send a ``Content-Length``), rather than an
empty body the app would misread. Left to each reader, the two framings obeyed
different rules: werkzeug's limit *truncates* an unterminated stream at the
maximum instead of refusing it, a malformed chunk raised from deep inside a view
as a 500, and the login limiter (which looks for the email) saw no body at all.

So this layer, outside everything that reads a body, reads it whole, up to the
limit: over the limit is ``413``, a body that cannot be read (bad chunk, cut
short) is ``400``, and what the inner layers get is the same body framed by
length, in memory. Nothing inside ever acts on a body the client did not send.
"""

from __future__ import annotations

import importlib
import io
from collections.abc import Iterable
from typing import Any

from service.errors import ApiError

#: Bytes read from the server's input stream at a time.
_CHUNK = 64 * 1024


class RequestBodyMiddleware:
    """Read every request body in full before the application sees it.

    :param max_bytes: the largest body accepted (``CONDUIT_MAX_BODY_BYTES``).
    """

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        declared = (environ.get("CONTENT_LENGTH") or "").strip()
        if not chunked and not declared:
            return self.app(environ, start_response)  # type: ignore[no-any-return]
        length: int | None = None
        if not chunked:
            if not declared.isdecimal():
                return ApiError.bad_request("body", "has an invalid Content-Length")(environ, start_response)
            length = int(declared)
            if length > self.max_bytes:
                return ApiError.too_large()(environ, start_response)  # refused unread
        stream = environ["wsgi.input"]
        if chunked and not environ.get("wsgi.input_terminated"):
            if "uwsgi.version" not in environ:
                return ApiError(411, {"body": ["must come with a Content-Length on this server"]})(
                    environ, start_response
                )
            stream = _UWSGIChunks()
        try:
            body = _read(stream, self.max_bytes + 1 if length is None else length)
        except Exception:  # the server's framing error (gunicorn: InvalidChunkSize, NoMoreData, ...)
            return ApiError.bad_request("body", "could not be read")(environ, start_response)
        if len(body) > self.max_bytes:
            return ApiError.too_large()(environ, start_response)
        if length is not None and len(body) < length:
            return ApiError.bad_request("body", "is shorter than its Content-Length")(environ, start_response)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("HTTP_TRANSFER_ENCODING", None)  # the body is now framed by its length
        return self.app(environ, start_response)  # type: ignore[no-any-return]


def _read(stream: Any, limit: int) -> bytes:
    """Up to ``limit`` bytes of ``stream``, stopping early at its end."""
    parts: list[bytes] = []
    remaining = limit
    while remaining > 0:
        part = stream.read(min(_CHUNK, remaining))
        if not part:
            break
        parts.append(part)
        remaining -= len(part)
    return b"".join(parts)


class _UWSGIChunks:
    """A chunked body under uWSGI, read chunk by chunk with its own API (``wsgi.input`` is empty there)."""

    def __init__(self) -> None:
        uwsgi = importlib.import_module("uwsgi")  # exists only inside a uWSGI worker
        self._next_chunk = uwsgi.chunked_read
        self._pending = b""

    def read(self, size: int) -> bytes:
        while len(self._pending) < size:
            chunk = self._next_chunk()  # raises IOError on a malformed chunk or a timeout
            if not chunk:
                break
            self._pending += chunk
        part, self._pending = self._pending[:size], self._pending[size:]
        return bytes(part)
