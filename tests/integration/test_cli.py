"""The ``conduit`` admin command, in-process (CliRunner) and as the installed script."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, select

from service.cli import main
from service.db import Database
from service.models import Article
from service.shared_reads.delivery import BOUND
from tests.integration.servers import gunicorn

CONDUIT = str(Path(sys.executable).parent / "conduit")


@pytest.fixture
def cli_env(backend: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the CLI at an empty database of the backend under test; returns its URL."""
    url = f"sqlite:///{tmp_path / 'cli.db'}" if backend == "sqlite" else request.getfixturevalue("throwaway_pg_url")
    monkeypatch.setenv("CONDUIT_DATABASE_URL", url)
    monkeypatch.setenv("CONDUIT_INSTANCE_PATH", str(tmp_path / "instance"))
    return str(url)


def run(*args: str, input: str | None = None) -> object:
    return CliRunner().invoke(main, list(args), input=input)


def test_db_upgrade_current_history_and_downgrade(cli_env: str) -> None:
    assert run("db", "upgrade").exit_code == 0
    current = subprocess.run([CONDUIT, "db", "current"], capture_output=True, text=True, env=os.environ)
    assert "(head)" in current.stdout
    assert (
        "Create the Conduit tables"
        in subprocess.run([CONDUIT, "db", "history"], capture_output=True, text=True, env=os.environ).stdout
    )
    assert run("db", "downgrade", "base").exit_code == 0
    assert run("check").exit_code == 1  # migrations are no longer at head


def test_users_create_list_set_password_delete(cli_env: str) -> None:
    run("db", "upgrade")

    created = run("users", "create", "--username", "admin", "--email", "Admin@Example.org", "--password", "s3cret-pw")
    listed = run("users", "list")
    changed = run("users", "set-password", "admin", input="another-pw\nanother-pw\n")
    deleted = run("users", "delete", "admin", "--yes")

    assert created.exit_code == 0, created.output  # type: ignore[attr-defined]
    assert "admin\tadmin@example.org" in listed.output  # type: ignore[attr-defined]
    assert changed.exit_code == 0 and "password of admin changed" in changed.output  # type: ignore[attr-defined]
    assert deleted.exit_code == 0  # type: ignore[attr-defined]
    assert "0 of 0 users" in run("users", "list").output  # type: ignore[attr-defined]


def test_users_create_reports_invalid_and_taken_values_on_stderr(cli_env: str) -> None:
    run("db", "upgrade")
    run("users", "create", "--username", "admin", "--email", "admin@x.org", "--password", "s3cret-pw")

    invalid = subprocess.run(
        [CONDUIT, "users", "create", "--username", "a b", "--email", "nope", "--password", "x"],
        capture_output=True,
        text=True,
        env=os.environ,
    )
    taken = subprocess.run(
        [CONDUIT, "users", "create", "--username", "admin", "--email", "admin@x.org", "--password", "s3cret-pw"],
        capture_output=True,
        text=True,
        env=os.environ,
    )

    assert invalid.returncode == 1 and "email: is invalid" in invalid.stderr and invalid.stdout == ""
    assert taken.returncode == 1 and "has already been taken" in taken.stderr


def test_set_password_of_unknown_user_fails(cli_env: str) -> None:
    run("db", "upgrade")

    result = run("users", "set-password", "ghost", "--password", "whatever-1")

    assert result.exit_code == 1 and "no user named 'ghost'" in result.output  # type: ignore[attr-defined]


def test_seed_is_deterministic(cli_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def seeded(url: str) -> list[tuple[str, str, int]]:
        monkeypatch.setenv("CONDUIT_DATABASE_URL", url)
        assert run("db", "upgrade").exit_code == 0
        result = run("seed", "--users", "5", "--articles", "40", "--seed", "3", "--batch", "15")
        assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
        engine = create_engine(url)
        with engine.connect() as connection:
            rows = connection.execute(select(Article.slug, Article.body, Article.author_id).order_by(Article.id))
            found = [tuple(row) for row in rows]
        engine.dispose()
        return found  # type: ignore[return-value]

    first = seeded(cli_env)
    second = seeded(f"sqlite:///{tmp_path / 'second.db'}")

    assert len(first) == 40 and first == second


def test_check_reports_an_unreachable_database_with_exit_1(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CONDUIT_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/nothing")
    monkeypatch.setenv("CONDUIT_INSTANCE_PATH", str(tmp_path))

    result = subprocess.run([CONDUIT, "check"], capture_output=True, text=True, env=os.environ, timeout=60)

    assert result.returncode == 1
    assert "FAIL  database: unavailable" in result.stderr


def test_check_refuses_production_without_a_secret(monkeypatch: pytest.MonkeyPatch, cli_env: str) -> None:
    run("db", "upgrade")
    monkeypatch.setenv("CONDUIT_ENV", "production")
    monkeypatch.delenv("CONDUIT_SECRET_KEY", raising=False)

    result = run("check")

    assert result.exit_code == 1 and "FAIL  configuration" in result.output  # type: ignore[attr-defined]


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize("flags", [["--workers", "1"], ["--reload"]], ids=["gunicorn", "reloader"])
def test_serve_answers_requests(cli_env: str, tmp_path: Path, flags: list[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        # A session of its own: the reloader forks a child that must go down with it.
        process = subprocess.Popen(
            [CONDUIT, "serve", "--port", str(port), *flags],
            env=os.environ,
            stdout=sink,
            stderr=sink,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def test_help_lists_every_command() -> None:
    result = subprocess.run([CONDUIT, "--help"], capture_output=True, text=True)

    assert result.returncode == 0
    for name in ("serve", "db", "users", "seed", "check"):
        assert name in result.stdout


def test_revoke_tokens_and_set_password_sign_the_user_out_and_delete_frees_no_id(cli_env: str, tmp_path: Path) -> None:
    from webtest import TestApp

    from service import db
    from service.app import create_app
    from tests.conftest import make_settings

    run("db", "upgrade")
    settings = make_settings(database_url=cli_env, instance_path=tmp_path)
    engine = db.make_engine(settings)
    client = TestApp(create_app(settings, database=Database.on(engine)))

    def token(name: str) -> str:
        body = {"user": {"username": name, "email": f"{name}@x.org", "password": "password1"}}
        return str(client.post_json("/api/users", body, status=201).json["user"]["token"])

    def signed_in(value: str) -> bool:
        return (
            client.get("/api/user", headers={"Authorization": f"Token {value}"}, expect_errors=True).status_int == 200
        )

    jake, anne, last = token("jake"), token("anne"), token("last")

    revoked = run("users", "revoke-tokens", "JAKE")
    run("users", "set-password", "anne", "--password", "another-pw")
    run("users", "delete", "last", "--yes")
    token("next")  # would have been given the deleted account's id on SQLite before AUTOINCREMENT
    outcome = (signed_in(jake), signed_in(anne), signed_in(last))
    engine.dispose()

    assert revoked.exit_code == 0 and "every token of JAKE revoked" in revoked.output  # type: ignore[attr-defined]
    assert outcome == (False, False, False)


def test_deleting_a_user_forgets_their_cached_pages_at_once(
    cli_env: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from webtest import TestApp

    from service import db as service_db
    from service.app import create_app
    from tests.conftest import make_settings

    run("db", "upgrade")
    settings = make_settings(
        database_url=cli_env, instance_path=tmp_path / "instance", cache_url="sqlitefile", cache_min_uses=1
    )
    engine = service_db.make_engine(settings)
    request.addfinalizer(engine.dispose)
    app = TestApp(create_app(settings, database=Database.on(engine)))
    user = {"user": {"username": "gone", "email": "gone@example.org", "password": "password1"}}
    token = app.post_json("/api/users", user).json["user"]["token"]
    article = {"article": {"title": "Soon gone", "description": "d", "body": "b", "tagList": ["gone"]}}
    slug = app.post_json("/api/articles", article, headers={"Authorization": f"Token {token}"}).json["article"]["slug"]
    pages = [
        "/api/profiles/gone",
        f"/api/articles/{slug}",
        "/api/articles?author=gone",
        "/api/articles?tag=gone",
        "/api/tags",
    ]
    for page in pages * 2:
        app.get(page)
    assert all(app.get(page).headers["X-Cache"] == "hit" for page in pages)

    assert run("users", "delete", "gone", "--yes").exit_code == 0  # type: ignore[attr-defined]

    after = {page: app.get(page, expect_errors=True) for page in pages}
    assert after["/api/profiles/gone"].status_int == after[f"/api/articles/{slug}"].status_int == 404
    assert after["/api/articles?author=gone"].json["articlesCount"] == 0
    assert after["/api/articles?tag=gone"].json["articlesCount"] == 0
    assert after["/api/tags"].json["tags"] == []


def test_check_totals_compares_the_kept_totals_with_real_counts(cli_env: str, tmp_path: Path) -> None:
    from tests import scale

    run("db", "upgrade")
    engine = create_engine(cli_env)
    with engine.begin() as connection:
        scale.fill(connection, 200)
    healthy = run("check", "--totals")
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE tags SET articles_count = articles_count + 1 WHERE name = 't3'")
    broken = run("check", "--totals")
    engine.dispose()

    assert "ok    kept totals: equal to real counts" in healthy.output  # type: ignore[attr-defined]
    assert broken.exit_code == 1  # type: ignore[attr-defined]
    assert "tags.articles_count wrong on 1 rows" in broken.output  # type: ignore[attr-defined]


def test_an_admin_delete_while_a_shared_cache_is_unreachable_commits_and_is_never_served_stale(
    cli_env: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command records what it changes in the journal; the service delivers it when Redis is back (issue 32)."""
    from webtest import TestApp

    from service import db as service_db
    from service.app import create_app
    from tests.conftest import make_settings
    from tests.integration.servers import redis_server

    run("db", "upgrade")
    with redis_server(tmp_path) as redis:
        monkeypatch.setenv("CONDUIT_CACHE_URL", redis.url)
        settings = make_settings(
            database_url=cli_env, instance_path=tmp_path / "instance", cache_url=redis.url, cache_min_uses=1
        )
        engine = service_db.make_engine(settings)
        request.addfinalizer(engine.dispose)
        app = TestApp(create_app(settings, database=Database.on(engine)))
        user = {"user": {"username": "kept", "email": "kept@example.org", "password": "password1"}}
        token = app.post_json("/api/users", user).json["user"]["token"]
        article = {"article": {"title": "Kept", "description": "d", "body": "b", "tagList": []}}
        slug = app.post_json("/api/articles", article, headers={"Authorization": f"Token {token}"}).json["article"]
        slug = slug["slug"]
        deadline = time.monotonic() + 5
        while app.get(f"/api/articles/{slug}").headers.get("X-Cache") != "hit" and time.monotonic() < deadline:
            time.sleep(0.05)
        cached = app.get(f"/api/articles/{slug}").headers.get("X-Cache")

        redis.process.send_signal(signal.SIGSTOP)  # every host's shared cache unreachable, its entries intact
        try:
            admin = run("users", "delete", "kept", "--yes")
            # Past the staleness bound: within it a worker may still serve what its last delivery allowed.
            time.sleep(BOUND + 0.2)
        finally:
            redis.process.send_signal(signal.SIGCONT)
        after = [app.get(f"/api/articles/{slug}", expect_errors=True).status_int for _ in range(20)]
        time.sleep(0.3)
        later = [app.get(f"/api/articles/{slug}", expect_errors=True).status_int for _ in range(5)]

    with engine.connect() as connection:
        gone = connection.execute(select(Article.slug)).scalars().all()
    assert cached == "hit"
    assert admin.exit_code == 0, admin.output  # type: ignore[attr-defined]
    assert gone == []
    assert set(after) == set(later) == {404}  # the cached article, deleted while Redis was away, is never served


def test_a_backup_taken_while_the_service_writes_opens_checks_and_holds_every_acknowledged_write(
    tmp_path: Path,
) -> None:
    """``conduit db backup`` under a writer committing a comment after another, through gunicorn (issue 33)."""
    instance = tmp_path / "instance"
    env = {**os.environ, "CONDUIT_INSTANCE_PATH": str(instance), "CONDUIT_ENV": "development"}
    env.pop("CONDUIT_DATABASE_URL", None)  # the embedded default: instance/conduit.db
    for argv in (["db", "upgrade"], ["seed", "--users", "50", "--articles", "4000"]):
        assert subprocess.run([CONDUIT, *argv], env=env, capture_output=True).returncode == 0
    copy = tmp_path / "backups" / "conduit.db"
    with gunicorn(tmp_path, workers=2, ratelimit_enabled="false", log_level="WARNING") as server:
        user = {"user": {"username": "writer", "email": "writer@x.org", "password": "password1"}}
        token = server.call("POST", "/api/users", user).body["user"]["token"]
        article = {"article": {"title": "Busy", "description": "d", "body": "b"}}
        slug = server.call("POST", "/api/articles", article, token=token).body["article"]["slug"]
        acknowledged, stop = [0], threading.Event()

        def write() -> None:
            while not stop.is_set():
                reply = server.call("POST", f"/api/articles/{slug}/comments", {"comment": {"body": "x"}}, token=token)
                assert reply.status == 201, reply
                acknowledged[0] += 1

        writer = threading.Thread(target=write)
        writer.start()
        time.sleep(1)
        before = acknowledged[0]
        taken = subprocess.run([CONDUIT, "db", "backup", str(copy)], env=env, capture_output=True, text=True)
        after = acknowledged[0]
        time.sleep(0.5)
        stop.set()
        writer.join(30)

    assert taken.returncode == 0, taken.stderr
    assert "check: ok" in taken.stdout and "copying" in taken.stderr  # the progress bar, on stderr
    assert not copy.with_name("conduit.db-wal").exists() and list(copy.parent.iterdir()) == [copy]
    engine = create_engine(f"sqlite:///{copy}")
    with engine.connect() as connection:
        kept = connection.exec_driver_sql(
            "SELECT count(*) FROM comments JOIN articles ON articles.id = comments.article_id WHERE slug = ?", (slug,)
        ).scalar_one()
        assert connection.exec_driver_sql("PRAGMA integrity_check").scalar_one() == "ok"
        assert connection.exec_driver_sql("SELECT count(*) FROM articles").scalar_one() == 4001
    engine.dispose()
    assert before > 0 and before <= kept <= after, (before, kept, after)  # one moment's state, none of it lost
    checked = subprocess.run(
        [CONDUIT, "check", "--totals"],
        env={**env, "CONDUIT_DATABASE_URL": f"sqlite:///{copy}"},
        capture_output=True,
        text=True,
    )
    assert "kept totals: equal to real counts" in checked.stdout, checked.stdout + checked.stderr


def test_a_backup_never_overwrites_unasked_and_on_postgresql_names_pg_dump(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONDUIT_DATABASE_URL", f"sqlite:///{tmp_path / 'b.db'}")
    monkeypatch.setenv("CONDUIT_INSTANCE_PATH", str(tmp_path / "instance"))
    assert run("db", "upgrade").exit_code == 0
    existing = tmp_path / "existing.db"
    existing.write_bytes(b"an older backup")

    refused = run("db", "backup", str(existing))
    forced = run("db", "backup", str(existing), "--force")
    itself = run("db", "backup", str(tmp_path / "b.db"), "--force")
    monkeypatch.setenv("CONDUIT_DATABASE_URL", "postgresql://conduit@db.example/conduit")
    on_postgresql = run("db", "backup", str(tmp_path / "pg.dump"))

    assert refused.exit_code == 1 and "exists; pass --force" in refused.output  # type: ignore[attr-defined]
    assert forced.exit_code == 0 and existing.read_bytes().startswith(b"SQLite format 3")  # type: ignore[attr-defined]
    assert itself.exit_code == 1 and "the database itself" in itself.output  # type: ignore[attr-defined]
    assert on_postgresql.exit_code == 1  # type: ignore[attr-defined]
    assert "pg_dump --format=custom" in on_postgresql.output and "pg_restore" in on_postgresql.output  # type: ignore[attr-defined]
    assert not (tmp_path / "pg.dump").exists()
