"""A user's journey through the Python client openapi-python-client generates from docs/openapi.json.

Run by tests/integration/test_generated_clients.py as ``python python_journey.py BASE_URL`` with the generated
package ``conduit_client`` on the path; exits non-zero at the first step that goes wrong. Every answer is read
through the client's own models: an error must arrive as a typed ``GenericErrorModel``.
"""

from __future__ import annotations

import sys
import uuid
from typing import Any

from conduit_client import AuthenticatedClient, Client
from conduit_client.api.articles import (
    create_article,
    delete_article,
    get_article,
    get_articles,
    get_articles_feed,
    update_article,
)
from conduit_client.api.comments import create_article_comment, delete_article_comment, get_article_comments
from conduit_client.api.favorites import create_article_favorite, delete_article_favorite
from conduit_client.api.profile import follow_user_by_username, get_profile_by_username, unfollow_user_by_username
from conduit_client.api.tags import get_tags
from conduit_client.api.user_and_authentication import create_user, get_current_user, login, update_current_user
from conduit_client.models import (
    GenericErrorModel,
    LoginUser,
    LoginUserRequest,
    MultipleArticlesResponse,
    MultipleCommentsResponse,
    NewArticle,
    NewArticleRequest,
    NewComment,
    NewCommentRequest,
    NewUser,
    NewUserRequest,
    ProfileResponse,
    SingleArticleResponse,
    SingleCommentResponse,
    TagsResponse,
    UpdateArticle,
    UpdateArticleRequest,
    UpdateUser,
    UpdateUserRequest,
    UserResponse,
)


def parsed(response: Any, status: int, kind: type) -> Any:
    """The response's typed body, after checking its status and model."""
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert isinstance(response.parsed, kind), (kind, response.parsed)
    return response.parsed


def error(response: Any, status: int, key: str) -> list[str]:
    """A RealWorld error, read as the client's GenericErrorModel: the messages under ``key``."""
    model = parsed(response, status, GenericErrorModel)
    return list(model.errors.additional_properties[key])


def main(base: str) -> None:
    tag = uuid.uuid4().hex[:8]
    anonymous = Client(base_url=base, raise_on_unexpected_status=True)
    password = "password123"

    def register(name: str) -> AuthenticatedClient:
        body = NewUserRequest(user=NewUser(username=name, email=f"{name}@example.org", password=password))
        user = parsed(create_user.sync_detailed(client=anonymous, body=body), 201, UserResponse).user
        assert user.username == name and user.token
        return AuthenticatedClient(base_url=base, token=user.token, prefix="Token")

    alice, bob = f"alice{tag}", f"bob{tag}"
    register(alice)
    as_bob = register(bob)
    credentials = LoginUserRequest(user=LoginUser(email=f"{alice}@example.org", password=password))
    token = parsed(login.sync_detailed(client=anonymous, body=credentials), 200, UserResponse).user.token
    as_alice = AuthenticatedClient(base_url=base, token=token, prefix="Token")
    me = parsed(get_current_user.sync_detailed(client=as_alice), 200, UserResponse).user
    assert me.username == alice
    edited = UpdateUserRequest(user=UpdateUser(bio="writes"))
    assert (
        parsed(update_current_user.sync_detailed(client=as_alice, body=edited), 200, UserResponse).user.bio == "writes"
    )

    new = NewArticleRequest(
        article=NewArticle(title=f"Generated {tag}", description="d", body="b", tag_list=[tag, "gen"])
    )
    article = parsed(create_article.sync_detailed(client=as_alice, body=new), 201, SingleArticleResponse).article
    slug = article.slug
    assert sorted(article.tag_list) == sorted([tag, "gen"]) and article.author.username == alice
    change = UpdateArticleRequest(article=UpdateArticle(body="edited"))
    assert (
        parsed(
            update_article.sync_detailed(slug, client=as_alice, body=change), 200, SingleArticleResponse
        ).article.body
        == "edited"
    )
    read = parsed(get_article.sync_detailed(slug, client=anonymous), 200, SingleArticleResponse).article
    assert read.body == "edited" and read.favorited is False
    second = NewArticleRequest(article=NewArticle(title=f"Second {tag}", description="d", body="b", tag_list=[tag]))
    parsed(create_article.sync_detailed(client=as_alice, body=second), 201, SingleArticleResponse)

    listed = parsed(get_articles.sync_detailed(client=anonymous, tag=tag, limit=1), 200, MultipleArticlesResponse)
    assert listed.articles_count == 2 and len(listed.articles) == 1
    page_two = parsed(
        get_articles.sync_detailed(client=anonymous, tag=tag, limit=1, offset=1), 200, MultipleArticlesResponse
    )
    assert page_two.articles[0].slug == slug  # newest first: the first article is on the second page
    by_author = parsed(get_articles.sync_detailed(client=anonymous, author=alice), 200, MultipleArticlesResponse)
    assert by_author.articles_count == 2
    assert tag in parsed(get_tags.sync_detailed(client=anonymous), 200, TagsResponse).tags

    favorited = parsed(create_article_favorite.sync_detailed(slug, client=as_bob), 200, SingleArticleResponse).article
    assert favorited.favorited and favorited.favorites_count == 1
    by_fan = parsed(get_articles.sync_detailed(client=as_bob, favorited=bob), 200, MultipleArticlesResponse)
    assert [a.slug for a in by_fan.articles] == [slug] and by_fan.articles[0].favorited
    said = NewCommentRequest(comment=NewComment(body="nice"))
    comment = parsed(
        create_article_comment.sync_detailed(slug, client=as_bob, body=said), 201, SingleCommentResponse
    ).comment
    comments = parsed(
        get_article_comments.sync_detailed(slug, client=anonymous), 200, MultipleCommentsResponse
    ).comments
    assert [c.body for c in comments] == ["nice"] and comments[0].author.username == bob

    followed = parsed(follow_user_by_username.sync_detailed(alice, client=as_bob), 200, ProfileResponse).profile
    assert followed.following is True
    feed = parsed(get_articles_feed.sync_detailed(client=as_bob), 200, MultipleArticlesResponse)
    assert feed.articles_count == 2 and {a.author.username for a in feed.articles} == {alice}
    assert parsed(get_profile_by_username.sync_detailed(alice, client=as_bob), 200, ProfileResponse).profile.following

    # The typed errors: 401, 403, 404, 409, 422, each a GenericErrorModel.
    assert error(
        get_current_user.sync_detailed(client=AuthenticatedClient(base_url=base, token="x.y.z", prefix="Token")),
        401,
        "token",
    )
    assert error(delete_article.sync_detailed(slug, client=as_bob), 403, "article")
    assert error(get_article.sync_detailed(f"missing-{tag}", client=anonymous), 404, "article")
    taken = NewUserRequest(user=NewUser(username=alice, email=f"other{tag}@example.org", password=password))
    assert error(create_user.sync_detailed(client=anonymous, body=taken), 409, "username")
    blank = NewArticleRequest(article=NewArticle(title="", description="d", body="b"))
    assert error(create_article.sync_detailed(client=as_alice, body=blank), 422, "title")

    assert delete_article_comment.sync_detailed(slug, comment.id, client=as_bob).status_code in (200, 204)
    assert (
        parsed(unfollow_user_by_username.sync_detailed(alice, client=as_bob), 200, ProfileResponse).profile.following
        is False
    )
    unfavorited = parsed(delete_article_favorite.sync_detailed(slug, client=as_bob), 200, SingleArticleResponse).article
    assert unfavorited.favorites_count == 0
    assert delete_article.sync_detailed(slug, client=as_alice).status_code in (200, 204)
    assert error(get_article.sync_detailed(slug, client=anonymous), 404, "article")
    sys.stdout.write("python journey: ok\n")


if __name__ == "__main__":
    main(sys.argv[1])
