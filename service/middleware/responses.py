"""Answering from middleware: an ApiError as a complete WSGI response."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from werkzeug.http import HTTP_STATUS_CODES

from service.errors import ApiError

#: The content type of every JSON answer (the dispatcher uses the same).
JSON_TYPE = "application/json; charset=utf-8"


def send_error(error: ApiError, start_response: Any, extra_headers: Iterable[tuple[str, str]] = ()) -> Iterable[bytes]:
    """Start and return the RealWorld error response for ``error``."""
    body = error.to_json()
    headers = [("Content-Type", JSON_TYPE), ("Content-Length", str(len(body))), *error.headers.items()]
    start_response(f"{error.status} {HTTP_STATUS_CODES.get(error.status, '')}", [*headers, *extra_headers])
    return [body]
