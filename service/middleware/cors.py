"""CORS for browser front ends served from another origin.

Tokens travel in the ``Authorization`` header, never in cookies, so no
credentials mode is needed and ``*`` is a safe default for a public API.
(No maintained WSGI CORS package exists on PyPI; this is the whole of it.)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: Request headers browsers may send: every one the API reads (the conditional and idempotent writes' too).
ALLOWED_HEADERS = "Authorization, Content-Type, Idempotency-Key, If-Match, If-None-Match, X-Request-ID"
#: Response headers scripts may read: every one the API sets beyond the CORS-safelisted ones.
EXPOSED_HEADERS = (
    "ETag, Idempotent-Replayed, Retry-After, WWW-Authenticate, X-Cache, X-Request-ID,"
    " X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset"
)
#: Seconds a browser may cache a preflight answer.
MAX_AGE = "600"


class CorsMiddleware:
    """Answer preflight requests and add CORS headers for allowed origins.

    :param origins: allowed origins (``https://app.example``), or ``("*",)``.
    :param methods: the methods the routes answer, sent in preflight responses.
    """

    def __init__(self, app: Any, origins: Iterable[str], methods: Iterable[str]) -> None:
        self.app = app
        self.methods = ", ".join([*methods, "OPTIONS"])
        self.origins = frozenset(origins)
        self.any_origin = "*" in self.origins

    def _allow_origin(self, origin: str) -> list[tuple[str, str]]:
        if self.any_origin:
            return [("Access-Control-Allow-Origin", "*")]
        if origin in self.origins:
            return [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]
        return []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        origin = environ.get("HTTP_ORIGIN")
        if not origin:
            return self.app(environ, start_response)  # type: ignore[no-any-return]
        allow = self._allow_origin(origin)
        if environ["REQUEST_METHOD"] == "OPTIONS" and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in environ:
            headers = [("Content-Length", "0")]
            if allow:
                headers += [
                    *allow,
                    ("Access-Control-Allow-Methods", self.methods),
                    ("Access-Control-Allow-Headers", ALLOWED_HEADERS),
                    ("Access-Control-Max-Age", MAX_AGE),
                ]
            start_response("204 No Content", headers)
            return []
        if not allow:
            return self.app(environ, start_response)  # type: ignore[no-any-return]
        extra = [*allow, ("Access-Control-Expose-Headers", EXPOSED_HEADERS)]

        def start_with_cors(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, headers + extra, exc_info)

        return self.app(environ, start_with_cors)  # type: ignore[no-any-return]
