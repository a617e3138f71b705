"""Arrange state directly through the ORM; go through the API only when the call is the behaviour."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import insert
from sqlalchemy.orm import Session

from service import auth
from service.models import Article, Comment, Tag, User, favorites, follows
from tests.conftest import TEST_SECRET

#: The password of every factory-made user.
PASSWORD = "correct horse battery"
_counter = itertools.count(1)


@functools.cache
def _password_hash() -> str:
    # Hashing is deliberately slow; one hash serves every factory-made user.
    return auth.hash_password(PASSWORD)


def make_user(db: Session, username: str | None = None, **overrides: object) -> User:
    """A committed user; ``username`` defaults to a unique one."""
    n = next(_counter)
    username = username or f"user{n}"
    values: dict[str, object] = {
        "username": username,
        "email": f"{username.lower()}@example.org",
        "password_hash": _password_hash(),
        "bio": None,
        "image": None,
    }
    values.update(overrides)
    user = User(**values)
    db.add(user)
    db.commit()
    return user


def make_article(
    db: Session,
    author: User,
    title: str | None = None,
    tags: Sequence[str] = (),
    created_at: datetime | None = None,
    **overrides: object,
) -> Article:
    """A committed article by ``author``."""
    n = next(_counter)
    title = title or f"Article {n}"
    tag_rows = []
    for name in tags:
        tag = db.query(Tag).filter_by(name=name).one_or_none() or Tag(name=name)
        tag_rows.append(tag)
    values: dict[str, object] = {
        "slug": f"article-{n}",
        "title": title,
        "description": f"About {title}",
        "body": f"The body of {title}",
        "author_id": author.id,
    }
    if created_at is not None:
        values["created_at"] = values["updated_at"] = created_at
    values.update(overrides)
    article = Article(**values)
    article.tags = tag_rows
    db.add(article)
    db.commit()
    return article


def make_comment(db: Session, article: Article, author: User, body: str = "A comment") -> Comment:
    """A committed comment."""
    comment = Comment(article_id=article.id, author_id=author.id, body=body)
    db.add(comment)
    db.commit()
    return comment


def follow(db: Session, follower: User, followed: User) -> None:
    """``follower`` follows ``followed``."""
    db.execute(insert(follows).values(follower_id=follower.id, followed_id=followed.id))
    db.commit()


def favorite(db: Session, user: User, article: Article) -> None:
    """``user`` favorites ``article``."""
    db.execute(insert(favorites).values(user_id=user.id, article_id=article.id))
    db.commit()


def token_for(user: User, **kwargs: object) -> str:
    """A valid token for ``user`` signed with the test secret."""
    return auth.issue_token(user.id, user.token_stamp, TEST_SECRET, 3600, **kwargs)  # type: ignore[arg-type]


def auth_header(user: User) -> dict[str, str]:
    """``{"Authorization": "Token <jwt>"}`` for ``user``."""
    return {"Authorization": f"Token {token_for(user)}"}
