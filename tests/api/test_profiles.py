"""Profiles and follows."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from webtest import TestApp

from service.models import follows
from tests.factories import auth_header, follow, make_user


def test_get_profile_anonymously_is_not_following(client: TestApp, db: Session) -> None:
    make_user(db, "celeb", bio="famous", image="https://img/c.png")

    body = client.get("/api/profiles/celeb").json

    assert body == {"profile": {"username": "celeb", "bio": "famous", "image": "https://img/c.png", "following": False}}


def test_get_profile_shows_following_for_a_follower(client: TestApp, db: Session) -> None:
    jake, celeb = make_user(db, "jake"), make_user(db, "celeb")
    follow(db, jake, celeb)

    body = client.get("/api/profiles/celeb", headers=auth_header(jake)).json

    assert body["profile"]["following"] is True


def test_get_unknown_profile_returns_404(client: TestApp) -> None:
    body = client.get("/api/profiles/nobody", status=404).json

    assert body == {"errors": {"profile": ["not found"]}}


def test_follow_returns_the_profile_followed(client: TestApp, db: Session) -> None:
    jake, _ = make_user(db, "jake"), make_user(db, "celeb")

    body = client.post("/api/profiles/celeb/follow", headers=auth_header(jake)).json

    assert body["profile"]["username"] == "celeb"
    assert body["profile"]["following"] is True


def test_follow_twice_is_idempotent(client: TestApp, db: Session) -> None:
    jake, _ = make_user(db, "jake"), make_user(db, "celeb")

    client.post("/api/profiles/celeb/follow", headers=auth_header(jake))
    body = client.post("/api/profiles/celeb/follow", headers=auth_header(jake)).json

    assert body["profile"]["following"] is True
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(follows)) == 1


def test_unfollow_returns_the_profile_not_followed(client: TestApp, db: Session) -> None:
    jake, celeb = make_user(db, "jake"), make_user(db, "celeb")
    follow(db, jake, celeb)

    body = client.delete("/api/profiles/celeb/follow", headers=auth_header(jake)).json

    assert body["profile"]["following"] is False


def test_unfollow_when_not_following_is_idempotent(client: TestApp, db: Session) -> None:
    jake, _ = make_user(db, "jake"), make_user(db, "celeb")

    body = client.delete("/api/profiles/celeb/follow", headers=auth_header(jake)).json

    assert body["profile"]["following"] is False


def test_follow_unknown_user_returns_404(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")

    body = client.post("/api/profiles/nobody/follow", headers=auth_header(jake), status=404).json

    assert body == {"errors": {"profile": ["not found"]}}


def test_follow_yourself_returns_403(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")

    body = client.post("/api/profiles/jake/follow", headers=auth_header(jake), status=403).json

    assert body == {"errors": {"profile": ["cannot follow yourself"]}}


def test_follow_without_token_returns_401_before_404(client: TestApp) -> None:
    body = client.post("/api/profiles/nobody/follow", status=401).json

    assert body == {"errors": {"token": ["is missing"]}}
