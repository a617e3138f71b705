"""How JSON travels: the one content type and the one encoding of every body.

Leaf module (standard library and werkzeug only): the errors, the writes'
answers and the middleware's own answers are made here; a successful read
leaves through ``service.conditional_read``, which uses the same type and encoding.
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
    """A response for a body that is JSON already (a write's answer)."""
    return Response(body, status=status, content_type=JSON_TYPE)
