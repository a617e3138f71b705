"""Comment views."""

from __future__ import annotations

from typing import Any

from service import queries
from service.ops import comments as ops
from service.request import ApiRequest


def get_article_comments(request: ApiRequest, slug: str) -> dict[str, Any]:
    """GetArticleComments: GET /api/articles/<slug>/comments (auth optional).

    :raises ApiError: 404 ``article``.
    """
    return {"comments": queries.comments_by_slug(request.reads, slug, request.viewer_id)}


def create_article_comment(request: ApiRequest, slug: str, body: dict[str, Any]) -> dict[str, Any]:
    """CreateArticleComment: POST /api/articles/<slug>/comments (auth required), 201.

    :raises ApiError: 404 ``article``.
    """
    return {"comment": ops.add_comment(request.db, request.authenticated_user, slug=slug, **body["comment"])}


def delete_article_comment(request: ApiRequest, slug: str, id: int) -> None:
    """DeleteArticleComment: DELETE /api/articles/<slug>/comments/<id> (auth required), 204.

    :raises ApiError: 404 ``article``/``comment``; 403 ``comment`` if not the author's.
    """
    ops.delete_comment(request.db, request.authenticated_user, slug=slug, comment_id=id)
