"""Tag views."""

from __future__ import annotations

from typing import Any

from service.ops import tags as ops
from service.web import ApiRequest


def get_tags(request: ApiRequest) -> dict[str, Any]:
    """GetTags: GET /api/tags (no auth)."""
    return {"tags": ops.list_tags(request.reads)}
