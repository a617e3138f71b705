"""API documentation: the OpenAPI document, Swagger UI at /docs and ReDoc at /redoc.

The pages' JavaScript and CSS are vendored in ``service/static/docs`` (see
``docs/update-docs-ui.sh``) and served by werkzeug's SharedDataMiddleware, so
the docs work behind a firewall. Asset URLs carry the vendored versions, so they
can be cached for a year and still change when the assets do.

Mounted under a sub-path (a shared host serving the app at ``/conduit``, which
the WSGI server says in ``SCRIPT_NAME``), every URL the pages and the document
give starts with that prefix: the assets, the document the pages load, and the
document's server URL, so "Try it out" calls the API where it is.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from werkzeug.middleware.shared_data import SharedDataMiddleware
from werkzeug.wrappers import Request, Response

from service.errors import ApiError
from service.json_bodies import JSON_TYPE, encode_json

#: Where the vendored Swagger UI and ReDoc files live.
STATIC_DIR = Path(__file__).resolve().parent.parent / "static" / "docs"
#: Where the document, the two pages and their assets are served.
SPEC_PATH, SWAGGER_PATH, REDOC_PATH, ASSETS_PATH = "/api/openapi.json", "/docs", "/redoc", "/static/docs"
#: Seconds browsers and proxies may keep the (versioned) assets.
ASSET_MAX_AGE = 365 * 24 * 3600
#: How many mount points' pages are kept.
_MOUNTS = 8

_SWAGGER_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Conduit API: Swagger UI</title>
  <link rel="stylesheet" href="{assets}/swagger-ui.css?v={version}">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{assets}/swagger-ui-bundle.js?v={version}"></script>
  <script>
    window.ui = SwaggerUIBundle({{
      url: "{spec}",
      dom_id: "#swagger-ui",
      presets: [SwaggerUIBundle.presets.apis],
      layout: "BaseLayout",
      deepLinking: true,
      persistAuthorization: true
    }});
  </script>
</body>
</html>
"""

_REDOC_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Conduit API: ReDoc</title>
</head>
<body>
  <redoc spec-url="{spec}"></redoc>
  <script src="{assets}/redoc.standalone.js?v={version}"></script>
</body>
</html>
"""


class DocsMiddleware:
    """Serve ``/api/openapi.json``, ``/docs``, ``/redoc`` and ``/static/docs/*``.

    :param document: builds the OpenAPI document, once, when it is first asked for
        (building it loads apispec: a tenth of a second a worker would otherwise
        spend at start-up).
    """

    def __init__(self, app: Any, document: Callable[[], dict[str, Any]]) -> None:
        self.app = SharedDataMiddleware(app, {ASSETS_PATH: str(STATIC_DIR)}, cache_timeout=ASSET_MAX_AGE)
        self.build_document = document
        self._document: dict[str, Any] | None = None
        self.version = quote(_versions())
        self._mounts: dict[str, dict[str, tuple[bytes, str, str | None]]] = {}  # SCRIPT_NAME -> pages

    def pages(self, mount: str) -> dict[str, tuple[bytes, str, str | None]]:
        """The document and the two pages as served under ``mount`` (``""`` at the root), made once per mount."""
        found = self._mounts.get(mount)
        if found is None:
            links = {"version": self.version, "spec": mount + SPEC_PATH, "assets": mount + ASSETS_PATH}
            if self._document is None:
                self._document = self.build_document()
            document = encode_json({**self._document, "servers": [{"url": mount or "/"}]})
            swagger, redoc = _SWAGGER_PAGE.format(**links), _REDOC_PAGE.format(**links)
            found = {
                SPEC_PATH: (document, JSON_TYPE, None),
                SWAGGER_PATH: (swagger.encode(), "text/html; charset=utf-8", _csp(_inline_script_hashes(swagger))),
                REDOC_PATH: (redoc.encode(), "text/html; charset=utf-8", _csp(["blob:"])),
            }
            if len(self._mounts) < _MOUNTS:  # a server names one or two; never grow on what a client sends
                self._mounts[mount] = found
        return found

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "").rstrip("/") or "/"
        if path not in (SPEC_PATH, SWAGGER_PATH, REDOC_PATH):
            return self.app(environ, start_response)
        page = self.pages(environ.get("SCRIPT_NAME", "").rstrip("/"))[path]
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return ApiError.from_http(405, None, {"Allow": "GET"})(environ, start_response)
        body, content_type, policy = page
        response = Response(body, content_type=content_type)
        if policy:
            response.headers["Content-Security-Policy"] = policy
        response.set_etag(hashlib.blake2b(body, digest_size=16).hexdigest())
        response.headers["Cache-Control"] = "no-cache"
        response.make_conditional(Request(environ))
        return response(environ, start_response)


def _csp(script_sources: list[str]) -> str:
    """A policy that lets the page load only from this service.

    Nothing is fetched from elsewhere, not even the "powered by" logo ReDoc
    links from a CDN, so the page behaves behind a firewall as it does here.
    Inline scripts are allowed by hash, not wholesale; inline styles are
    needed by both UIs.
    """
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' {' '.join(script_sources)}".strip(),
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self' data:",
            "connect-src 'self'",
            "worker-src 'self' blob:",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'none'",
        ]
    )


def _inline_script_hashes(html: str) -> list[str]:
    scripts = re.findall(r"<script>(.*?)</script>", html, flags=re.DOTALL)
    return [f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'" for s in scripts]


def _versions() -> str:
    try:
        return (STATIC_DIR / "VERSIONS").read_text().replace("\n", ";").strip(";")
    except OSError:
        return "unknown"
