"""The route table: every operation, its auth policy, schemas and status.

This is the single declaration the dispatcher loads and dumps with, and what
the OpenAPI document is generated from, so the two cannot drift.
Each route also declares what the edges need: its cache policy and rate-limit
scopes, read by the middleware through ``router.Router``. Imports views, schemas
and ``router.Route``.
"""

from __future__ import annotations

from schemas import articles as s_articles
from schemas import comments as s_comments
from schemas import health as s_health
from schemas import profiles as s_profiles
from schemas import tags as s_tags
from schemas import users as s_users
from service.models import MAX_INT
from service.router import Route
from service.shared_reads import surrogates
from service.views import articles, comments, health, profiles, tags, users

#: Comment ids are 32-bit in the database; larger ones cannot exist (and must not reach SQL).
_COMMENT_ID = f"<int(max={MAX_INT}):id>"

ROUTES: tuple[Route, ...] = (
    Route(
        "POST",
        "/users/login",
        users.login,
        auth="none",
        body=s_users.LoginUserRequestSchema,
        reply=s_users.UserResponseSchema,
        errors=(401,),
        limit_scopes=("all", "login"),
        summary="Log in with email and password",
    ),
    Route(
        "POST",
        "/users",
        users.create_user,
        auth="none",
        body=s_users.NewUserRequestSchema,
        reply=s_users.UserResponseSchema,
        status=201,
        errors=(409,),
        limit_scopes=("all", "register"),
        summary="Register a new user",
    ),
    Route(
        "GET",
        "/user",
        users.get_current_user,
        auth="required",
        reply=s_users.UserResponseSchema,
        summary="Get the current user",
    ),
    Route(
        "PUT",
        "/user",
        users.update_current_user,
        auth="required",
        body=s_users.UpdateUserRequestSchema,
        reply=s_users.UserResponseSchema,
        errors=(409,),
        # A new name, bio or image shows wherever the user does; a new name also renames their lists.
        forgets=("profile", "author", "favorited"),
        current="users.get_current_user",
        limit_scopes=("all", "writes"),
        summary="Update the current user",
    ),
    Route(
        "POST",
        "/user/logout",
        users.logout,
        auth="required",
        status=204,
        limit_scopes=("all", "writes"),
        summary="Sign out everywhere: revoke every token issued to the current user",
    ),
    Route(
        "GET",
        "/profiles/<username>",
        profiles.get_profile_by_username,
        auth="optional",
        reply=s_profiles.ProfileResponseSchema,
        errors=(404,),
        cache=lambda url, query: (surrogates.profile(url["username"]),),
        summary="Get a profile",
    ),
    Route(
        "POST",
        "/profiles/<username>/follow",
        profiles.follow_user_by_username,
        auth="required",
        reply=s_profiles.ProfileResponseSchema,
        errors=(403, 404),
        limit_scopes=("all", "writes"),
        summary="Follow a user",
    ),
    Route(
        "DELETE",
        "/profiles/<username>/follow",
        profiles.unfollow_user_by_username,
        auth="required",
        reply=s_profiles.ProfileResponseSchema,
        errors=(403, 404),
        limit_scopes=("all", "writes"),
        summary="Unfollow a user",
    ),
    Route(
        "GET",
        "/articles/feed",
        articles.get_articles_feed,
        auth="required",
        query=s_articles.PageQuerySchema,
        reply=s_articles.MultipleArticlesResponseSchema,
        summary="Recent articles from followed users",
    ),
    Route(
        "GET",
        "/articles",
        articles.get_articles,
        auth="optional",
        query=s_articles.ArticleQuerySchema,
        reply=s_articles.MultipleArticlesResponseSchema,
        cache=lambda url, query: surrogates.article_list(query),
        summary="Recent articles, filtered by tag, author or favoriter",
    ),
    Route(
        "POST",
        "/articles",
        articles.create_article,
        auth="required",
        body=s_articles.NewArticleRequestSchema,
        reply=s_articles.SingleArticleResponseSchema,
        status=201,
        # It enters the unfiltered lists, its author's and its tags' (and the tags page, for a new tag).
        forgets=("article", "articles", "author", "tagged", "tags"),
        limit_scopes=("all", "writes"),
        summary="Create an article",
    ),
    Route(
        "GET",
        "/articles/<slug>",
        articles.get_article,
        auth="optional",
        reply=s_articles.SingleArticleResponseSchema,
        errors=(404,),
        cache=lambda url, query: (surrogates.article(url["slug"]),),
        summary="Get an article",
    ),
    Route(
        "PUT",
        "/articles/<slug>",
        articles.update_article,
        auth="required",
        body=s_articles.UpdateArticleRequestSchema,
        reply=s_articles.SingleArticleResponseSchema,
        errors=(403, 404),
        # Its page under the old and the new slug (the old comments page moves), the tag lists it enters or leaves.
        forgets=("article", "comments", "tagged", "tags"),
        current="articles.get_article",
        limit_scopes=("all", "writes"),
        summary="Update an article",
    ),
    Route(
        "DELETE",
        "/articles/<slug>",
        articles.delete_article,
        auth="required",
        status=204,
        errors=(403, 404),
        # Its pages, and every list it leaves: all, its author's, its tags', its favoriters'.
        forgets=("article", "comments", "articles", "author", "tagged", "tags", "favorited"),
        current="articles.get_article",
        limit_scopes=("all", "writes"),
        summary="Delete an article",
    ),
    Route(
        "GET",
        "/articles/<slug>/comments",
        comments.get_article_comments,
        auth="optional",
        reply=s_comments.MultipleCommentsResponseSchema,
        errors=(404,),
        cache=lambda url, query: (surrogates.comments(url["slug"]),),
        summary="Get the comments of an article",
    ),
    Route(
        "POST",
        "/articles/<slug>/comments",
        comments.create_article_comment,
        auth="required",
        body=s_comments.NewCommentRequestSchema,
        reply=s_comments.SingleCommentResponseSchema,
        status=201,
        errors=(404,),
        forgets=("comments",),
        limit_scopes=("all", "writes"),
        summary="Comment on an article",
    ),
    Route(
        "DELETE",
        f"/articles/<slug>/comments/{_COMMENT_ID}",
        comments.delete_article_comment,
        auth="required",
        status=204,
        errors=(403, 404),
        forgets=("comments",),
        limit_scopes=("all", "writes"),
        summary="Delete a comment",
    ),
    Route(
        "POST",
        "/articles/<slug>/favorite",
        articles.create_article_favorite,
        auth="required",
        reply=s_articles.SingleArticleResponseSchema,
        errors=(404,),
        # favoritesCount wherever the article shows, and the favoriter's ?favorited= lists.
        forgets=("article", "favorited"),
        limit_scopes=("all", "writes"),
        tag="Favorites",
        summary="Favorite an article",
    ),
    Route(
        "DELETE",
        "/articles/<slug>/favorite",
        articles.delete_article_favorite,
        auth="required",
        reply=s_articles.SingleArticleResponseSchema,
        errors=(404,),
        forgets=("article", "favorited"),
        limit_scopes=("all", "writes"),
        tag="Favorites",
        summary="Unfavorite an article",
    ),
    Route(
        "GET",
        "/tags",
        tags.get_tags,
        auth="none",
        reply=s_tags.TagsResponseSchema,
        cache=lambda url, query: (surrogates.TAGS_PAGE,),
        summary="Get every tag in use",
    ),
)

#: Operational endpoints, outside the API: for load balancers and orchestrators.
OPS_ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/healthz",
        health.get_health,
        auth="none",
        reply=s_health.HealthSchema,
        mount="",
        limit_scopes=(),
        summary="Liveness: the process answers (no I/O)",
    ),
    Route(
        "GET",
        "/readyz",
        health.get_readiness,
        auth="none",
        reply=s_health.ReadinessSchema,
        mount="",
        errors=(503,),
        limit_scopes=(),
        uses=("storages",),
        summary="Readiness: database, migrations and shared storages",
    ),
)

#: Everything the service serves.
ALL_ROUTES: tuple[Route, ...] = ROUTES + OPS_ROUTES
