"""``Idempotency-Key``: a signed-in client retries a write and it is applied once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from webtest import TestApp

from service.models import Comment, IdempotencyKey
from service.ops.idempotency import KEPT_FOR
from tests.factories import auth_header, make_article, make_user


def _comment(client: TestApp, slug: str, headers: dict[str, str], body: str = "once", status: int = 201) -> Any:
    payload = {"comment": {"body": body}}
    return client.post_json(f"/api/articles/{slug}/comments", payload, headers=headers, status=status)


def _comments(db: Session) -> int:
    db.expire_all()
    return int(db.scalar(select(func.count()).select_from(Comment)) or 0)


def test_a_retried_write_with_the_same_key_gets_the_first_answer_and_is_applied_once(
    client: TestApp, db: Session
) -> None:
    jake = make_user(db, "jake")
    slug = make_article(db, jake).slug
    headers = {**auth_header(jake), "Idempotency-Key": "3f2b6a9e-retry-me"}

    first = _comment(client, slug, headers)
    again = _comment(client, slug, headers)

    assert again.json == first.json
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert _comments(db) == 1


def test_without_a_key_every_write_is_applied(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")
    slug = make_article(db, jake).slug

    _comment(client, slug, auth_header(jake))
    _comment(client, slug, auth_header(jake))

    assert _comments(db) == 2


def test_a_write_without_a_body_replays_its_empty_answer(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")
    slug = make_article(db, jake).slug
    headers = {**auth_header(jake), "Idempotency-Key": "unfavorite-1"}
    client.post(f"/api/articles/{slug}/favorite", headers=auth_header(jake), status=200)

    client.delete(f"/api/articles/{slug}/favorite", headers=headers, status=200)
    client.post(f"/api/articles/{slug}/favorite", headers=auth_header(jake), status=200)  # favorited again
    replay = client.delete(f"/api/articles/{slug}/favorite", headers=headers, status=200)

    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json["article"]["favorited"] is False  # the first answer, not a second unfavorite
    shown = client.get(f"/api/articles/{slug}", headers=auth_header(jake), status=200)
    assert shown.json["article"]["favorited"] is True


def test_a_key_on_a_different_request_is_refused(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")
    slug = make_article(db, jake).slug
    headers = {**auth_header(jake), "Idempotency-Key": "k1"}
    _comment(client, slug, headers, body="first")

    other = _comment(client, slug, headers, body="second", status=422)

    assert other.json == {"errors": {"Idempotency-Key": ["was used for a different request"]}}
    assert _comments(db) == 1


def test_a_key_on_another_path_method_or_query_is_refused_never_replayed(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")
    one = make_article(db, jake, title="One", slug="one").slug
    two = make_article(db, jake, title="Two", slug="two").slug
    headers = {**auth_header(jake), "Idempotency-Key": "k-moves"}
    client.post(f"/api/articles/{one}/favorite", headers=headers)
    different = {"errors": {"Idempotency-Key": ["was used for a different request"]}}

    assert client.post(f"/api/articles/{two}/favorite", headers=headers, status=422).json == different
    assert client.delete(f"/api/articles/{one}/favorite", headers=headers, status=422).json == different
    assert client.post(f"/api/articles/{one}/favorite?x=1", headers=headers, status=422).json == different
    assert _comment(client, one, headers, status=422).json == different
    shown = client.get("/api/articles?favorited=jake", headers=auth_header(jake)).json["articles"]
    assert [article["slug"] for article in shown] == [one]  # only the first write was applied


def test_a_failed_write_stores_nothing_so_its_retry_runs(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")
    slug = make_article(db, jake).slug
    headers = {**auth_header(jake), "Idempotency-Key": "k2"}

    _comment(client, slug, headers, body="", status=422)
    _comment(client, "no-such-article", headers, body="x", status=404)
    _comment(client, slug, headers, body="x")

    assert _comments(db) == 1


def test_keys_are_each_users_own(client: TestApp, db: Session) -> None:
    jake, jane = make_user(db, "jake"), make_user(db, "jane")
    slug = make_article(db, jake).slug

    _comment(client, slug, {**auth_header(jake), "Idempotency-Key": "same"})
    second = _comment(client, slug, {**auth_header(jane), "Idempotency-Key": "same"})

    assert "Idempotent-Replayed" not in second.headers
    assert _comments(db) == 2


def test_a_malformed_key_is_refused(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")
    slug = make_article(db, jake).slug

    for key in ("", "x" * 256, "x" * 10_000, "has space", "tab\there", "ünïcode", "a,b", "a, b", "\x7f"):
        refused = _comment(client, slug, {**auth_header(jake), "Idempotency-Key": key}, status=400)
        message = "must be one key of 1 to 255 visible ASCII characters but a comma"
        assert refused.json == {"errors": {"Idempotency-Key": [message]}}
    for raw in ("k\r\nSet-Cookie: x=1", "k\x00", "k\x01", "k\u2028", "k\udcff"):  # as a server might pass them on
        refused = client.post_json(
            f"/api/articles/{slug}/comments",
            {"comment": {"body": "x"}},
            headers=auth_header(jake),
            extra_environ={"HTTP_IDEMPOTENCY_KEY": raw},
            status=400,
        )
        assert list(refused.json["errors"]) == ["Idempotency-Key"] and "Set-Cookie" not in refused.headers
    assert _comments(db) == 0


def test_a_key_on_a_read_or_an_anonymous_write_is_not_used(client: TestApp, db: Session) -> None:
    # Reads change nothing, a repeated registration answers 409, a login changes nothing: no key is needed or kept.
    jake = make_user(db, "jake")
    make_article(db, jake, title="One", slug="one")
    odd = {"Idempotency-Key": "not a valid key, ünïcode"}
    registration = {"user": {"username": "anne", "email": "anne@example.org", "password": "password123"}}

    assert client.get("/api/articles/one", headers={**auth_header(jake), **odd}).status_int == 200
    assert client.get("/api/tags", headers=odd).status_int == 200
    client.post_json("/api/users", registration, headers={"Idempotency-Key": "reg-1"}, status=201)
    again = client.post_json("/api/users", registration, headers={"Idempotency-Key": "reg-1"}, status=409)
    login = {"user": {"email": "anne@example.org", "password": "password123"}}
    client.post_json("/api/users/login", login, headers={"Idempotency-Key": "login-1"}, status=200)

    assert "Idempotent-Replayed" not in again.headers
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(IdempotencyKey)) == 0


def test_a_key_answers_retries_for_a_day_and_then_is_forgotten(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")
    slug = make_article(db, jake).slug
    headers = {**auth_header(jake), "Idempotency-Key": "a-day"}
    _comment(client, slug, headers)

    _age_keys(db, KEPT_FOR - timedelta(minutes=1))
    replayed = _comment(client, slug, headers)
    _age_keys(db, timedelta(minutes=2))
    applied_again = _comment(client, slug, headers)

    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in applied_again.headers  # older than a day: a new write, with a new key row
    assert _comments(db) == 2
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(IdempotencyKey)) == 1


def _age_keys(db: Session, by: timedelta) -> None:
    for kept in db.scalars(select(IdempotencyKey)):
        kept.created_at -= by
    db.commit()


def test_a_key_is_deleted_with_its_user(client: TestApp, db: Session) -> None:
    jake = make_user(db, "jake")
    slug = make_article(db, jake).slug
    _comment(client, slug, {**auth_header(jake), "Idempotency-Key": "gone-with-jake"})

    db.delete(jake)
    db.commit()

    assert db.scalar(select(func.count()).select_from(IdempotencyKey)) == 0


def test_a_kept_answer_keeps_no_token_at_rest_and_its_replay_gets_a_working_one(client: TestApp, db: Session) -> None:
    # A stolen database copy must not hand out a day of working tokens (issue 34).
    jake = make_user(db, "jake")
    headers = {**auth_header(jake), "Idempotency-Key": "new-password-1"}
    change = {"user": {"password": "a-new-password", "bio": "changed"}}

    first = client.put_json("/api/user", change, headers=headers)
    replay = client.put_json("/api/user", change, headers=headers)

    db.expire_all()
    kept = db.scalars(select(IdempotencyKey.body)).one()
    assert first.json["user"]["token"].encode() not in kept and b'"token":""' in kept
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json["user"]["bio"] == "changed" and replay.json["user"]["token"]
    again = {"Authorization": f"Token {replay.json['user']['token']}"}
    assert client.get("/api/user", headers=again).json["user"]["username"] == "jake"
