"""Article and favorite views."""

from __future__ import annotations

from typing import Any

from service import queries
from service.ops import articles as ops
from service.request import ApiRequest


def get_articles(request: ApiRequest, query: dict[str, Any]) -> dict[str, Any]:
    """GetArticles: GET /api/articles (auth optional); filters tag, author, favorited."""
    articles, total = queries.articles_page(request.reads, request.viewer_id, **query)
    return {"articles": articles, "articles_count": total}


def get_articles_feed(request: ApiRequest, query: dict[str, Any]) -> dict[str, Any]:
    """GetArticlesFeed: GET /api/articles/feed (auth required)."""
    articles, total = queries.feed_page(request.reads, request.authenticated_user.id, **query)
    return {"articles": articles, "articles_count": total}


def get_article(request: ApiRequest, slug: str) -> dict[str, Any]:
    """GetArticle: GET /api/articles/<slug> (auth optional).

    :raises ApiError: 404 ``article``.
    """
    return {"article": queries.article_by_slug(request.reads, slug, request.viewer_id)}


def create_article(request: ApiRequest, body: dict[str, Any]) -> dict[str, Any]:
    """CreateArticle: POST /api/articles (auth required), 201."""
    return {"article": ops.create_article(request.db, request.authenticated_user, **body["article"])}


def update_article(request: ApiRequest, slug: str, body: dict[str, Any]) -> dict[str, Any]:
    """UpdateArticle: PUT /api/articles/<slug> (auth required).

    :raises ApiError: 404 ``article``; 403 ``article`` if not the author's.
    """
    return {"article": ops.update_article(request.db, request.authenticated_user, slug=slug, **body["article"])}


def delete_article(request: ApiRequest, slug: str) -> None:
    """DeleteArticle: DELETE /api/articles/<slug> (auth required), 204.

    :raises ApiError: 404 ``article``; 403 ``article`` if not the author's.
    """
    ops.delete_article(request.db, request.authenticated_user, slug=slug)


def create_article_favorite(request: ApiRequest, slug: str) -> dict[str, Any]:
    """CreateArticleFavorite: POST /api/articles/<slug>/favorite (auth required).

    :raises ApiError: 404 ``article``.
    """
    return {"article": ops.favorite(request.db, request.authenticated_user, slug=slug)}


def delete_article_favorite(request: ApiRequest, slug: str) -> dict[str, Any]:
    """DeleteArticleFavorite: DELETE /api/articles/<slug>/favorite (auth required).

    :raises ApiError: 404 ``article``.
    """
    return {"article": ops.unfavorite(request.db, request.authenticated_user, slug=slug)}
