"""The RealWorld contract's facts our OpenAPI document is checked against, written down here.

Transcribed from the RealWorld API specification (``api/openapi.yml`` in
gothinkster/realworld), so that the tests need nothing outside this repository.
Paths carry our ``/api`` mount.
"""

from __future__ import annotations

#: Every RealWorld operation: (path, method) -> operationId.
OPERATIONS: dict[tuple[str, str], str] = {
    ("/api/users/login", "post"): "Login",
    ("/api/users", "post"): "CreateUser",
    ("/api/user", "get"): "GetCurrentUser",
    ("/api/user", "put"): "UpdateCurrentUser",
    ("/api/profiles/{username}", "get"): "GetProfileByUsername",
    ("/api/profiles/{username}/follow", "post"): "FollowUserByUsername",
    ("/api/profiles/{username}/follow", "delete"): "UnfollowUserByUsername",
    ("/api/articles/feed", "get"): "GetArticlesFeed",
    ("/api/articles", "get"): "GetArticles",
    ("/api/articles", "post"): "CreateArticle",
    ("/api/articles/{slug}", "get"): "GetArticle",
    ("/api/articles/{slug}", "put"): "UpdateArticle",
    ("/api/articles/{slug}", "delete"): "DeleteArticle",
    ("/api/articles/{slug}/comments", "get"): "GetArticleComments",
    ("/api/articles/{slug}/comments", "post"): "CreateArticleComment",
    ("/api/articles/{slug}/comments/{id}", "delete"): "DeleteArticleComment",
    ("/api/articles/{slug}/favorite", "post"): "CreateArticleFavorite",
    ("/api/articles/{slug}/favorite", "delete"): "DeleteArticleFavorite",
    ("/api/tags", "get"): "GetTags",
}

#: The component schemas the contract names.
COMPONENTS = frozenset(
    {
        "Article",
        "Comment",
        "GenericErrorModel",
        "LoginUser",
        "NewArticle",
        "NewComment",
        "NewUser",
        "Profile",
        "UpdateArticle",
        "UpdateUser",
        "User",
    }
)

#: The security scheme: ``Authorization: Token <jwt>``.
SECURITY_SCHEME = ("Token", "Authorization")
