"""How JSON travels: the one content type and the one encoding of every body.

Leaf module (standard library and werkzeug only): the dispatcher's answers,
the errors and the middleware's own answers are all made here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from werkzeug.wrappers import Response

#: Every JSON response says so, with its charset.
JSON_TYPE = "application/json; charset=utf-8"


def encode_json(data: Any) -> bytes:
    """Compact UTF-8 JSON."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """A compact UTF-8 JSON response."""
    return Response(encode_json(data), status=status, headers=dict(headers or {}), content_type=JSON_TYPE)


def json_bytes_response(body: bytes, status: int = 200) -> Response:
    """A response for a body that is JSON already (a cached answer)."""
    return Response(body, status=status, content_type=JSON_TYPE)


def conditional(response: Response, environ: dict[str, Any], *, private: bool) -> Response:
    """Make a ``200`` answer to a GET revalidatable, and answer a matching ``If-None-Match`` with ``304``.

    The ETag is the body's hash. ``no-cache`` has clients revalidate every time
    (cheap with the ETag); ``private`` keeps shared proxies from storing an
    answer made for one signed-in reader; ``Vary: Authorization`` keeps them
    from serving an anonymous answer to a signed-in reader.
    """
    response.add_etag()
    response.headers["Cache-Control"] = "private, no-cache" if private else "no-cache"
    response.headers["Vary"] = "Authorization"  # set, not merged: nothing before varies it (CORS adds its own line)
    return response.make_conditional(environ)
