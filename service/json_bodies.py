"""How JSON travels: the one content type and the one encoding of every body.

Leaf module (standard library, werkzeug and orjson only): the errors, the
writes' answers and the middleware's own answers are made here; a successful
read leaves through ``service.conditional_read``, which uses the same type and
encoding.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import orjson
from werkzeug.wrappers import Response

#: Every JSON response says so, with its charset.
JSON_TYPE = "application/json; charset=utf-8"


def encode_json(data: Any) -> bytes:
    """Compact UTF-8 JSON: the bytes ``standard_json`` writes, by orjson, at a fourteenth of the CPU.

    For what the service encodes (strings, integers, booleans, None, lists and
    string-keyed dicts) orjson writes exactly the standard library's compact
    output, byte for byte: the ETags and the byte offsets ``shared_reads.shown``
    records depend on it, and the suite checks it for every response it sees
    (``tests/openapi_check.py``). What orjson refuses (an integer past 64 bits,
    a key that is not a string) goes to the standard library instead.
    """
    try:
        return orjson.dumps(data)
    except TypeError:  # orjson.JSONEncodeError
        return standard_json(data)


def standard_json(data: Any) -> bytes:
    """The standard library's compact UTF-8 JSON: what ``encode_json`` writes, slower."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """A compact UTF-8 JSON response."""
    return Response(encode_json(data), status=status, headers=dict(headers or {}), content_type=JSON_TYPE)


def json_bytes_response(body: bytes, status: int = 200) -> Response:
    """A response for a body that is JSON already (a write's answer)."""
    return Response(body, status=status, content_type=JSON_TYPE)
