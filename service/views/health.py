"""Health views: liveness without I/O, readiness with."""

from __future__ import annotations

from typing import Any

from service.errors import ApiError
from service.lifecycle import draining
from service.ops import health as ops
from service.request import ApiRequest


def get_health(request: ApiRequest) -> dict[str, Any]:
    """GET /healthz: the process is alive and answering. Touches nothing."""
    return {"status": "ok"}


def get_readiness(request: ApiRequest, storages: ops.Storages) -> dict[str, Any]:
    """GET /readyz: the host is not stopping, the database answers and its schema is at the code's revision.

    Also reports on the shared storages (``storages``, handed in by ``create_app``
    through the route's ``uses``), and is not ready without those it cannot serve without.

    :raises ApiError: 503 naming the check that failed (``server: shutting down`` while draining).
    """
    if draining():
        raise ApiError.unavailable("server", message="shutting down")
    return {"status": "ok", "checks": ops.readiness(request.db, storages)}
