"""Health views: liveness without I/O, readiness with."""

from __future__ import annotations

from typing import Any

from service.ops import health as ops
from service.web import ApiRequest


def get_health(request: ApiRequest) -> dict[str, Any]:
    """GET /healthz: the process is alive and answering. Touches nothing."""
    return {"status": "ok"}


def get_readiness(request: ApiRequest) -> dict[str, Any]:
    """GET /readyz: the database answers and its schema is at the code's revision.

    :raises ApiError: 503 naming the check that failed.
    """
    return {"status": "ok", "checks": ops.readiness(request.db, request.probes, request.required_probes)}
