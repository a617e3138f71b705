"""How a successful read leaves the service: its body, its ETag and the client's preconditions.

Used by the dispatcher (a read it computed) and by the response cache (a read
it stored), so both answer alike. Imports ``service.json_bodies`` and ``service.errors`` only.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from werkzeug.http import generate_etag, parse_etags, quote_etag

from service.errors import ApiError
from service.json_bodies import JSON_TYPE


class ConditionalRead:
    """A successful read: a ``200`` JSON body for a GET or HEAD, revalidatable by its ETag; a WSGI app.

    Every read the API answers is sent by this class, fresh from the dispatcher
    or stored in the response cache, so both send the same headers. The ETag is
    the body's hash (computed once, when a cached answer is stored). ``no-cache``
    has clients revalidate every time (cheap with the ETag); ``private`` keeps
    shared proxies from storing an answer made for one signed-in reader;
    ``Vary: Authorization`` keeps them from serving an anonymous answer to a
    signed-in reader.

    Preconditions follow RFC 9110 13.2.2, parsed by werkzeug: ``If-Match``
    first (strong comparison, ``*`` matches), failing with a ``412`` error;
    then ``If-None-Match`` (weak comparison), matching with ``304`` without the
    body's headers. (werkzeug's ``is_resource_modified`` lets a matching
    ``If-Match`` override ``If-None-Match`` and refuses ``If-Match: *``.)
    There is no ``Last-Modified``, so ``If-Modified-Since`` has nothing to
    compare. HEAD gets the headers alone. Written against WSGI rather than as
    a werkzeug ``Response`` made conditional: that took 87 of the 208 µs of CPU
    a cache hit cost (bench/README.md), on the path every read takes.
    """

    __slots__ = ("body", "etag", "private")

    def __init__(self, body: bytes, etag: str | None = None, *, private: bool = False) -> None:
        self.body = body
        self.etag = etag if etag is not None else generate_etag(body)
        self.private = private

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        headers = [
            ("ETag", quote_etag(self.etag)),
            ("Cache-Control", "private, no-cache" if self.private else "no-cache"),
            ("Vary", "Authorization"),  # CORS adds its own line
        ]
        if_match = environ.get("HTTP_IF_MATCH", "").strip()  # an empty field names nothing: no condition
        if if_match and not parse_etags(if_match).contains(self.etag):
            return ApiError.precondition_failed()(environ, start_response)
        if parse_etags(environ.get("HTTP_IF_NONE_MATCH")).contains_weak(self.etag):
            start_response("304 Not Modified", headers)
            return []
        start_response("200 OK", [("Content-Type", JSON_TYPE), ("Content-Length", str(len(self.body))), *headers])
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [self.body]
