"""The dispatcher owns the transaction: commit on success, roll back on any error."""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker
from webtest import TestApp

from service import db as service_db
from service.app import create_app
from service.db import Database
from service.dispatch import Dispatcher
from service.errors import ApiError
from service.metrics import PrometheusMetrics
from service.models import Article, User, article_tags, favorites
from service.ops import health
from service.ops import users as user_ops
from service.request import ApiRequest
from service.router import Route, Router
from tests.conftest import make_settings
from tests.factories import auth_header, make_article, make_user


def _app_with_view(factory: sessionmaker[Session], view: object) -> TestApp:
    """A dispatcher whose only route is ``POST /api/tags`` → ``view``, status 204."""
    routes = (Route("POST", "/tags", view, auth="none", status=204),)  # type: ignore[arg-type]
    return TestApp(Dispatcher(Router(routes), make_settings(), Database(factory)))


def _count_users(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).select_from(User)) or 0


def test_successful_request_commits(real_engine: Engine) -> None:
    factory = service_db.make_session_factory(real_engine)

    def view(request: ApiRequest) -> None:
        request.db.add(User(username="kept", email="kept@x.org", password_hash="h"))

    _app_with_view(factory, view).post("/api/tags", status=204)

    assert _count_users(factory) == 1


def test_failing_request_rolls_back_everything(real_engine: Engine) -> None:
    factory = service_db.make_session_factory(real_engine)

    def view(request: ApiRequest) -> None:
        request.db.add(User(username="lost", email="lost@x.org", password_hash="h"))
        request.db.flush()
        raise ApiError.forbidden("thing")

    _app_with_view(factory, view).post("/api/tags", status=403)

    assert _count_users(factory) == 0


def test_concurrent_registration_of_one_username_gives_409_not_500(real_engine: Engine) -> None:
    factory = service_db.make_session_factory(real_engine)
    client = TestApp(create_app(make_settings(), database=Database(factory)))
    first = factory()
    # The first registration is flushed but not committed: the second one's
    # pre-check sees nothing, so only the unique constraint can stop it.
    first.connection(execution_options={"conduit_write_intent": True})
    user_ops.register(first, username="jake", email="jake@x.org", password="password1")
    first.flush()
    outcome: dict[str, object] = {}

    def second() -> None:
        response = client.post_json(
            "/api/users",
            {"user": {"username": "jake", "email": "other@x.org", "password": "password2"}},
            expect_errors=True,
        )
        outcome["status"], outcome["body"] = response.status_int, response.json

    thread = threading.Thread(target=second)
    thread.start()
    thread.join(0.5)  # it is now waiting on the first transaction's lock
    first.commit()
    first.close()
    thread.join(10)

    assert outcome == {"status": 409, "body": {"errors": {"username": ["has already been taken"]}}}
    assert _count_users(factory) == 1


def test_concurrent_favorites_of_one_article_are_all_counted_once(real_engine: Engine) -> None:
    factory = service_db.make_session_factory(real_engine)
    with factory() as session:
        fans = [make_user(session, f"fan{i}") for i in range(6)]
        author = make_user(session, "author")
        slug = make_article(session, author).slug
        headers = [auth_header(fan) for fan in fans]
    client = TestApp(create_app(make_settings(), database=Database(factory)))
    statuses: list[int] = []

    def favorite(h: dict[str, str]) -> None:
        statuses.append(client.post(f"/api/articles/{slug}/favorite", headers=h, expect_errors=True).status_int)

    threads = [threading.Thread(target=favorite, args=(h,)) for h in headers + headers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert statuses == [200] * 12
    assert client.get(f"/api/articles/{slug}").json["article"]["favoritesCount"] == 6


def test_two_conditional_edits_of_one_version_at_once_give_one_200_and_one_412(real_engine: Engine) -> None:
    """Both read the same version; the later commit must not overwrite the earlier (no lost update)."""
    factory = service_db.make_session_factory(real_engine)
    with factory() as session:
        jake = make_user(session, "jake")
        make_article(session, jake, title="One", slug="one")
        me = auth_header(jake)
    client = TestApp(create_app(make_settings(), database=Database(factory)))
    etag = client.get("/api/articles/one", headers=me).headers["ETag"]
    barrier = threading.Barrier(8)
    statuses: list[int] = []

    def edit(n: int) -> None:
        barrier.wait()
        reply = client.put_json(
            "/api/articles/one", {"article": {"body": f"edit {n}"}}, headers={**me, "If-Match": etag}, status="*"
        )
        statuses.append(reply.status_int)

    threads = [threading.Thread(target=edit, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [200] + [412] * 7


def test_one_write_sent_many_times_at_once_with_one_idempotency_key_is_applied_once(real_engine: Engine) -> None:
    """The retries race the first attempt: each waits for it on the key's unique index, then replays it."""
    factory = service_db.make_session_factory(real_engine)
    with factory() as session:
        jake = make_user(session, "jake")
        slug = make_article(session, jake).slug
        headers = {**auth_header(jake), "Idempotency-Key": "one-comment"}
    client = TestApp(create_app(make_settings(), database=Database(factory)))
    barrier = threading.Barrier(8)
    answers: list[tuple[int, object, str | None]] = []

    def send() -> None:
        barrier.wait()
        response = client.post_json(
            f"/api/articles/{slug}/comments", {"comment": {"body": "once"}}, headers=headers, expect_errors=True
        )
        answers.append((response.status_int, response.json, response.headers.get("Idempotent-Replayed")))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    applied = [answer for answer in answers if answer[0] == 201 and answer[2] is None]
    replayed = [answer for answer in answers if answer[2] == "true"]
    busy = [answer for answer in answers if answer[0] == 409]
    assert len(applied) == 1 and len(replayed) == 7 and busy == []
    assert all(answer[1] == applied[0][1] for answer in replayed)
    comments = client.get(f"/api/articles/{slug}/comments").json["comments"]
    assert [comment["body"] for comment in comments] == ["once"]


def test_a_write_postgresql_picks_as_a_deadlocks_victim_is_run_again_and_both_writes_land(
    throwaway_pg_url: str, tmp_path: Path
) -> None:
    """Two writes lock two rows in opposite orders: PostgreSQL aborts one (40P01), which is then run again."""
    engine = service_db.make_engine(make_settings(database_url=throwaway_pg_url, instance_path=tmp_path))
    service_db.upgrade(engine)
    factory = service_db.make_session_factory(engine)
    with factory() as session:
        ids = [make_user(session, name).id for name in ("first", "second")]
    barrier = threading.Barrier(2, timeout=10)
    attempts = {"a": 0, "b": 0}

    def locking(name: str, order: list[int]) -> Any:
        def view(request: ApiRequest) -> None:
            attempts[name] += 1
            for n, user_id in enumerate(order):
                request.db.execute(text("UPDATE users SET bio = :bio WHERE id = :id"), {"bio": name, "id": user_id})
                if n == 0 and attempts[name] == 1:
                    barrier.wait()  # each holds its first row now: the second statements deadlock

        view.__name__ = f"lock_{name}"  # a route's endpoint is its view's name
        return view

    metrics = PrometheusMetrics(None, ("test", "head"))
    routes = (
        Route("POST", "/a", locking("a", ids), auth="none", status=204),  # type: ignore[arg-type]
        Route("POST", "/b", locking("b", ids[::-1]), auth="none", status=204),  # type: ignore[arg-type]
    )
    client = TestApp(Dispatcher(Router(routes), make_settings(), Database(factory), metrics=metrics))
    statuses: dict[str, int] = {}

    def send(name: str) -> None:
        statuses[name] = client.post(f"/api/{name}", status="*").status_int

    threads = [threading.Thread(target=send, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    exposed = metrics.exposition("")[0].decode()
    engine.dispose()

    assert statuses == {"a": 204, "b": 204}
    assert sorted(attempts.values()) == [1, 2]  # the victim ran twice, the other once
    assert 'conduit_db_retries_total{cause="deadlock"} 1.0' in exposed


def test_totals_equal_real_counts_after_concurrent_creates_deletes_favorites_and_unfavorites(
    real_engine: Engine,
) -> None:
    """Eight writers at once, each publishing, deleting, favoriting and unfavoriting at random (issue 34).

    Every count the API answers (favoritesCount, articlesCount of every list and filter) and every total the
    database keeps must equal a real count afterwards; a write that lost a race answers 404, never a 5xx.
    """
    factory = service_db.make_session_factory(real_engine)
    with factory() as session:
        users = [make_user(session, f"writer{n}") for n in range(8)]
        slugs = [make_article(session, users[n % 8], tags=["shared", f"t{n % 3}"]).slug for n in range(8)]
        headers = [auth_header(user) for user in users]
    client = TestApp(create_app(make_settings(), database=Database(factory)))
    lock = threading.Lock()
    statuses: list[tuple[str, int]] = []
    barrier = threading.Barrier(8)

    def write(n: int) -> None:
        chance = random.Random(n)
        mine: list[str] = []
        barrier.wait()
        for step in range(30):
            with lock:
                slug = chance.choice(slugs)
            action = chance.choice(["publish", "delete", "favorite", "favorite", "unfavorite"])
            if action == "publish":
                article = {"title": f"By {n} at {step}", "description": "d", "body": "b", "tagList": ["shared"]}
                reply = client.post_json("/api/articles", {"article": article}, headers=headers[n], status="*")
                if reply.status_int == 201:
                    mine.append(reply.json["article"]["slug"])
                    with lock:
                        slugs.append(mine[-1])
            elif action == "delete" and mine:
                reply = client.delete(f"/api/articles/{mine.pop(chance.randrange(len(mine)))}", headers=headers[n])
            elif action == "favorite":
                reply = client.post(f"/api/articles/{slug}/favorite", headers=headers[n], status="*")
            else:
                reply = client.delete(f"/api/articles/{slug}/favorite", headers=headers[n], status="*")
            with lock:
                statuses.append((action, reply.status_int))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    assert {status for _, status in statuses} <= {200, 201, 204, 404}, sorted(set(statuses))
    assert sum(status in (200, 201, 204) for _, status in statuses) > 100  # the races were real writes
    with factory() as session:
        assert health.totals_mismatches(session) == []
        orphans = (
            select(func.count()).select_from(article_tags).where(article_tags.c.article_id.not_in(select(Article.id)))
        )
        assert session.scalar(orphans) == 0  # a delete took its tags with it (the kept totals count links)
        real = {
            slug: count
            for slug, count in session.execute(
                select(Article.slug, func.count(favorites.c.user_id))
                .outerjoin(favorites, favorites.c.article_id == Article.id)
                .group_by(Article.slug)
            )
        }
        by_author = dict(
            session.execute(
                select(User.username, func.count(Article.id)).outerjoin(Article).group_by(User.username)
            ).all()
        )
        favorited_by = dict(
            session.execute(
                select(User.username, func.count(favorites.c.article_id)).outerjoin(favorites).group_by(User.username)
            ).all()
        )
    pages = [client.get(f"/api/articles?limit=100&offset={offset}").json for offset in range(0, 300, 100)]
    listed = [article for page in pages for article in page["articles"]]
    assert pages[0]["articlesCount"] == len(real) == len(listed)
    assert {a["slug"]: a["favoritesCount"] for a in listed} == real
    assert client.get("/api/articles?tag=shared&limit=1").json["articlesCount"] == len(real)
    for name in by_author:
        assert client.get(f"/api/articles?author={name}&limit=1").json["articlesCount"] == by_author[name]
        assert client.get(f"/api/articles?favorited={name}&limit=1").json["articlesCount"] == favorited_by[name]
