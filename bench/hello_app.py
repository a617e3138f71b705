"""gunicorn's own limit for bench/reads.py: a WSGI app that answers every request with a fixed small JSON body.

Run: gunicorn -w 2 --chdir bench hello_app:application
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

BODY = b'{"hello":"world"}'


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "application/json; charset=utf-8"), ("Content-Length", str(len(BODY)))])
    return [BODY]
