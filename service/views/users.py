"""User and authentication views."""

from __future__ import annotations

from typing import Any

from service.ops import users as ops
from service.request import ApiRequest


def login(request: ApiRequest, body: dict[str, Any]) -> dict[str, Any]:
    """Login: POST /api/users/login (no auth).

    :raises ApiError: 401 ``credentials``.
    """
    user = ops.login(request.db, **body["user"])
    return {"user": request.sign_in(user)}


def create_user(request: ApiRequest, body: dict[str, Any]) -> dict[str, Any]:
    """CreateUser: POST /api/users (no auth), 201.

    :raises ApiError: 409 ``username``/``email``.
    """
    user = ops.register(request.db, **body["user"])
    return {"user": request.sign_in(user)}


def get_current_user(request: ApiRequest) -> dict[str, Any]:
    """GetCurrentUser: GET /api/user (auth required), with the token it was asked with.

    The same token, not a fresh one, so the answer (and its ETag, for ``If-Match``
    on ``PUT /api/user``) stays the same until the account changes.
    """
    return {"user": request.signed_in_as_asked()}


def update_current_user(request: ApiRequest, body: dict[str, Any]) -> dict[str, Any]:
    """UpdateCurrentUser: PUT /api/user (auth required), a partial update.

    A new password signs out every other session; this request's token keeps working.

    :raises ApiError: 409 ``username``/``email``.
    """
    kept = request.claims.digest if request.claims else None
    user = ops.update_user(request.db, request.authenticated_user, keep_token=kept, **body["user"])
    return {"user": request.sign_in(user)}


def logout(request: ApiRequest) -> None:
    """Logout: POST /api/user/logout (auth required), 204; our extension to RealWorld.

    Signs the user out everywhere: every token issued so far, this request's
    included, stops working.
    """
    ops.revoke_tokens(request.authenticated_user)
