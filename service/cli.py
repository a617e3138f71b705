"""The ``conduit`` admin command: serve, migrate, manage users, seed, check.

Like ``wsgi.py`` this is a composition root: it reads the environment and
owns the transaction of each command (commit on success, roll back on error).
Errors go to stderr with a non-zero exit code.
"""

from __future__ import annotations

import os
import random
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import click
from alembic import command
from marshmallow import ValidationError
from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from schemas.users import NewUserSchema, UpdateUserSchema
from service import auth, db, queries
from service.config import (
    ConfigError,
    Settings,
    database_url_from_env,
    instance_path_from_env,
    secret_problem,
)
from service.errors import ApiError
from service.models import Article, Comment, Tag, User, article_tags, favorites, follows
from service.ops import users as user_ops


def _database_settings() -> Settings:
    """Settings for commands that only touch the database.

    Migrations and user administration must work in a release step that is not
    given the token secret, so the secret check is not applied here.
    """
    return Settings(
        env="testing",
        secret_key="(admin commands sign no tokens)",
        database_url=database_url_from_env(),
        instance_path=instance_path_from_env(),
    )


@contextmanager
def _session() -> Iterator[Session]:
    """One transaction: commit if the block succeeds, roll back otherwise."""
    engine = db.make_engine(_database_settings())
    session = db.make_session_factory(engine)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
        engine.dispose()


def _fail(message: str) -> None:
    raise click.ClickException(message)


class _Group(click.Group):
    """Database failures become one clear line on stderr and exit code 1, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SQLAlchemyError as exc:
            orig = getattr(exc, "orig", None) or exc
            first = str(orig).strip().splitlines()[0] if str(orig).strip() else ""
            raise click.ClickException(f"database error: {type(orig).__name__}: {first}") from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Administer the Conduit API service.

    Configuration comes from CONDUIT_* environment variables (see README).
    """


# -- serve ----------------------------------------------------------------


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.option("--workers", type=int, help="gunicorn workers (default: from service.gunicorn_conf).")
@click.option("--reload", is_flag=True, help="Werkzeug's development server, restarting on code changes.")
def serve(host: str, port: int, workers: int | None, reload: bool) -> None:
    """Serve the API: gunicorn sync workers, or Werkzeug's reloader with --reload."""
    if reload:
        from werkzeug.serving import run_simple

        from service.app import create_app
        from service.logs import configure_logging

        settings = _load_settings()
        configure_logging(settings)
        run_simple(host, port, create_app(settings), use_reloader=True, use_debugger=False)
        return
    argv = [sys.executable, "-m", "gunicorn", "-c", "python:service.gunicorn_conf", "--bind", f"{host}:{port}"]
    if workers:
        argv += ["--workers", str(workers)]
    os.execv(sys.executable, [*argv, "wsgi:application"])


def _load_settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


# -- db -------------------------------------------------------------------


@main.group("db")
def db_group() -> None:
    """Schema migrations (Alembic), wherever alembic.ini lives."""


def _alembic() -> Any:
    config = db.alembic_config(database_url_from_env())
    config.attributes["configure_logging"] = False
    return config


@db_group.command()
@click.argument("revision", default="head")
def upgrade(revision: str) -> None:
    """Upgrade the database to REVISION (default: head)."""
    command.upgrade(_alembic(), revision)
    click.echo(f"database upgraded to {revision}")


@db_group.command()
@click.argument("revision")
def downgrade(revision: str) -> None:
    """Downgrade the database to REVISION (e.g. -1, base)."""
    command.downgrade(_alembic(), revision)
    click.echo(f"database downgraded to {revision}")


@db_group.command()
def current() -> None:
    """Show the database's current revision."""
    command.current(_alembic(), verbose=False)


@db_group.command()
def history() -> None:
    """List the revisions, newest first."""
    command.history(_alembic())


# -- users ----------------------------------------------------------------


@main.group()
def users() -> None:
    """Manage accounts."""


def _validated(schema: Any, **values: Any) -> dict[str, Any]:
    try:
        return dict(schema.load(values))
    except ValidationError as exc:
        messages = "; ".join(f"{field}: {', '.join(map(str, m))}" for field, m in exc.messages_dict.items())
        raise click.ClickException(messages) from None


@users.command("create")
@click.option("--username", required=True)
@click.option("--email", required=True)
@click.password_option(help="Prompted for (twice) when not given.")
def users_create(username: str, email: str, password: str) -> None:
    """Create an account."""
    fields = _validated(
        NewUserSchema(),  # type: ignore[no-untyped-call]
        username=username,
        email=email,
        password=password,
    )
    try:
        with _session() as session:
            user = user_ops.register(session, **fields)
            click.echo(f"created user {user.username} (id {user.id})")
    except ApiError as exc:
        _fail("; ".join(f"{k} {', '.join(v)}" for k, v in exc.messages.items()))


@users.command("list")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1))
def users_list(limit: int) -> None:
    """List accounts, newest first."""
    with _session() as session:
        rows = session.execute(
            select(User.id, User.username, User.email, User.created_at).order_by(User.id.desc()).limit(limit)
        ).all()
        total = session.scalar(select(func.count()).select_from(User))
    for row in rows:
        click.echo(f"{row.id}\t{row.username}\t{row.email}\t{row.created_at:%Y-%m-%d %H:%M}")
    click.echo(f"{len(rows)} of {total} users", err=True)


def _user(session: Session, username: str) -> User:
    user = session.scalars(select(User).where(queries.named(username))).one_or_none()
    if user is None:
        _fail(f"no user named {username!r}")
    return user  # type: ignore[return-value]


@users.command("set-password")
@click.argument("username")
@click.password_option(help="Prompted for (twice) when not given.")
def users_set_password(username: str, password: str) -> None:
    """Set USERNAME's password; every token issued before stops working."""
    fields = _validated(UpdateUserSchema(), password=password)  # type: ignore[no-untyped-call]
    with _session() as session:
        user_ops.update_user(session, _user(session, username), **fields)
    click.echo(f"password of {username} changed")


@users.command("revoke-tokens")
@click.argument("username")
def users_revoke_tokens(username: str) -> None:
    """Sign USERNAME out everywhere: every token issued so far stops working."""
    with _session() as session:
        user_ops.revoke_tokens(_user(session, username))
    click.echo(f"every token of {username} revoked")


@users.command("delete")
@click.argument("username")
@click.confirmation_option(prompt="Delete this user with their articles, comments and favorites?")
def users_delete(username: str) -> None:
    """Delete USERNAME and everything they wrote."""
    with _session() as session:
        session.execute(delete(User).where(User.id == _user(session, username).id))
    click.echo(f"deleted user {username}")


# -- seed -----------------------------------------------------------------

_WORDS = (
    "dragon",
    "train",
    "believe",
    "river",
    "mountain",
    "code",
    "python",
    "werkzeug",
    "garden",
    "winter",
    "summer",
    "light",
    "shadow",
    "ocean",
    "forest",
    "castle",
    "signal",
    "quiet",
    "storm",
    "engine",
    "letter",
    "harbor",
    "silver",
    "golden",
    "paper",
    "machine",
    "north",
    "south",
)
#: The password of every seeded user.
SEED_PASSWORD = "seeded-password"


@main.command()
@click.option("--users", "n_users", default=100, show_default=True, type=click.IntRange(1))
@click.option("--articles", "n_articles", default=1000, show_default=True, type=click.IntRange(0))
@click.option("--seed", "seed", default=1, show_default=True, type=int, help="Same seed, same data.")
@click.option("--prefix", default="seed", show_default=True, help="Usernames are PREFIX1, PREFIX2, ...")
@click.option("--batch", default=2000, show_default=True, type=click.IntRange(1), help="Articles per commit.")
def seed(n_users: int, n_articles: int, seed: int, prefix: str, batch: int) -> None:
    """Fill the database with deterministic demo data.

    Users (password "seeded-password"), follows, articles with tags, favorites
    and comments, inserted in batches through the ORM's bulk INSERT.
    """
    rng = random.Random(seed)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    password_hash = auth.hash_password(SEED_PASSWORD)
    try:
        with _session() as session:
            user_ids = list(
                session.scalars(
                    insert(User).returning(User.id, sort_by_parameter_order=True),
                    [
                        {
                            "username": f"{prefix}{i}",
                            "email": f"{prefix}{i}@example.org",
                            "password_hash": password_hash,
                            "bio": f"Seeded user {i}",
                            "image": None,
                            "created_at": base,
                            "updated_at": base,
                        }
                        for i in range(1, n_users + 1)
                    ],
                )
            )
            pairs = {(a, b) for a in user_ids for b in rng.sample(user_ids, min(5, len(user_ids))) if a != b}
            if pairs:
                session.execute(insert(follows), [{"follower_id": a, "followed_id": b} for a, b in sorted(pairs)])
            tag_ids = _seed_tags(session, [f"{w}" for w in _WORDS])
    except SQLAlchemyError as exc:
        reason = type(getattr(exc, "orig", None) or exc).__name__
        _fail(f"seeding users failed ({reason}); is the prefix {prefix!r} already used?")
    with click.progressbar(length=n_articles, label="articles", file=sys.stderr) as bar:
        for start in range(0, n_articles, batch):
            count = min(batch, n_articles - start)
            with _session() as session:
                _seed_articles(session, rng, start, count, user_ids, tag_ids, base)
            bar.update(count)
    click.echo(f"seeded {n_users} users, {len(pairs)} follows, {n_articles} articles (seed {seed})")


def _seed_tags(session: Session, names: list[str]) -> list[int]:
    existing = {name: tag_id for name, tag_id in session.execute(select(Tag.name, Tag.id).where(Tag.name.in_(names)))}
    missing = [{"name": n} for n in names if n not in existing]
    if missing:
        session.execute(insert(Tag), missing)
    return list(session.scalars(select(Tag.id).where(Tag.name.in_(names)).order_by(Tag.name)))


def _seed_articles(
    session: Session,
    rng: random.Random,
    start: int,
    count: int,
    user_ids: list[int],
    tag_ids: list[int],
    base: datetime,
) -> None:
    rows = []
    for n in range(start, start + count):
        title = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(2, 6))).capitalize()
        at = base + timedelta(seconds=n * 60 + rng.randint(0, 59))
        rows.append(
            {
                "slug": f"{title.lower().replace(' ', '-')}-{n:07d}",
                "title": title,
                "description": f"About {title.lower()}",
                "body": " ".join(rng.choice(_WORDS) for _ in range(rng.randint(20, 120))),
                "author_id": rng.choice(user_ids),
                "created_at": at,
                "updated_at": at,
            }
        )
    ids = list(session.scalars(insert(Article).returning(Article.id, sort_by_parameter_order=True), rows))
    links, favs, comments = [], [], []
    for article_id, row in zip(ids, rows, strict=True):
        for tag_id in rng.sample(tag_ids, rng.randint(0, 4)):
            links.append({"article_id": article_id, "tag_id": tag_id})
        for user_id in rng.sample(user_ids, min(len(user_ids), rng.randint(0, 3))):
            favs.append({"user_id": user_id, "article_id": article_id})
        for _ in range(rng.randint(0, 2)):
            comments.append(
                {
                    "article_id": article_id,
                    "author_id": rng.choice(user_ids),
                    "body": " ".join(rng.choice(_WORDS) for _ in range(8)),
                    "created_at": row["created_at"],
                    "updated_at": row["created_at"],
                }
            )
    for table, values in ((article_tags, links), (favorites, favs)):
        if values:
            session.execute(insert(table), values)
    if comments:
        session.execute(insert(Comment), comments)


# -- check ----------------------------------------------------------------


def _check_storages(settings: Settings, report: Any) -> None:
    """Rate-limit storage and response cache: reachable and writable."""
    from service.middleware.stores import cache_probe as probe
    from service.middleware.stores import make_cache, make_limiter

    if settings.ratelimit_enabled:
        try:
            healthy = make_limiter(settings).storage.check()
        except Exception as exc:  # a storage that cannot even be built
            healthy = False
            report(False, "rate-limit storage", f"unusable ({exc})")
        else:
            report(healthy, "rate-limit storage", "reachable" if healthy else "unreachable")
    try:
        healthy = probe(make_cache(settings))
    except Exception:
        healthy = False
    report(healthy, "response cache", f"{settings.cache_url} " + ("reachable" if healthy else "unreachable"))


@main.command()
def check() -> None:
    """Validate the configuration and reach every backing service; exit 1 on any problem."""
    problems = 0

    def report(ok: bool, what: str, detail: str) -> None:
        nonlocal problems
        problems += not ok
        click.echo(f"{'ok  ' if ok else 'FAIL'}  {what}: {detail}", err=not ok)

    try:
        settings = Settings.from_env()
        report(True, "configuration", f"{settings.env} mode")
    except ConfigError as exc:
        report(False, "configuration", str(exc))
        settings = _database_settings()
    strength = secret_problem(settings.secret_key)
    if settings.env == "production" or strength is None:
        report(strength is None, "secret key", "strong" if strength is None else strength)
    else:
        click.echo(f"warn  secret key: {strength} (acceptable outside production)")
    engine = db.make_engine(settings)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            report(True, "database", "reachable")
            try:
                current_rev = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
            except SQLAlchemyError:
                current_rev = None
            try:
                head = db.expected_head()
            except db.MigrationsMissing as missing:
                report(False, "migrations", str(missing))
            else:
                report(current_rev == head, "migrations", f"at {current_rev}, head is {head}")
    except SQLAlchemyError as exc:
        report(False, "database", f"unreachable ({type(getattr(exc, 'orig', None) or exc).__name__})")
    finally:
        engine.dispose()
    _check_storages(settings, report)
    if problems:
        raise click.exceptions.Exit(1)


if __name__ == "__main__":
    main()
