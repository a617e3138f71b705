"""Tag views."""

from __future__ import annotations

from typing import Any

from service import queries
from service.request import ApiRequest


def get_tags(request: ApiRequest) -> dict[str, Any]:
    """GetTags: GET /api/tags (no auth)."""
    return {"tags": queries.tag_names(request.reads)}  # every tag in use, alphabetical, without a cap
