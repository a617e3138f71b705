"""Profile views."""

from __future__ import annotations

from typing import Any

from service import queries
from service.ops import profiles as ops
from service.request import ApiRequest


def get_profile_by_username(request: ApiRequest, username: str) -> dict[str, Any]:
    """GetProfileByUsername: GET /api/profiles/<username> (auth optional).

    :raises ApiError: 404 ``profile``.
    """
    return {"profile": queries.profile_row(request.reads, username, request.viewer_id)}


def follow_user_by_username(request: ApiRequest, username: str) -> dict[str, Any]:
    """FollowUserByUsername: POST /api/profiles/<username>/follow (auth required).

    :raises ApiError: 404 ``profile``.
    """
    return {"profile": ops.follow(request.db, request.authenticated_user, username=username)}


def unfollow_user_by_username(request: ApiRequest, username: str) -> dict[str, Any]:
    """UnfollowUserByUsername: DELETE /api/profiles/<username>/follow (auth required).

    :raises ApiError: 404 ``profile``.
    """
    return {"profile": ops.unfollow(request.db, request.authenticated_user, username=username)}
