"""Engine and session factory; nothing is created at import time.

SQLite is tuned for several gunicorn workers sharing one file: WAL journal so
readers never block the writer, a busy timeout so writers queue instead of
failing, foreign keys on (for ``ON DELETE CASCADE``), and ``BEGIN IMMEDIATE``
for requests that may write. Without the last one, two workers that each read
and then write would fail with "database is locked" instead of waiting.
"""

from __future__ import annotations

import dataclasses
import fcntl
import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, ExceptionContext
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from service.config import Settings

if TYPE_CHECKING:  # Alembic is imported where migrations run, not by every worker at start-up (90 ms)
    from alembic.config import Config

#: Milliseconds a SQLite writer waits for the lock before giving up.
SQLITE_BUSY_TIMEOUT_MS = 10_000

#: Execution option a write's transaction begins with (``operations``); the SQLite
#: engine answers it with ``BEGIN IMMEDIATE``.
WRITE_INTENT = "conduit_write_intent"
#: Execution option of the SQLite read engine (``make_read_engine``): its connections are in autocommit.
READS_ONLY = "conduit_reads_only"


def make_engine(settings: Settings, **kwargs: Any) -> Engine:
    """Create the engine for ``settings.database_url``.

    Connecting is bounded so that an outage fails fast. Pooled connections are
    not pinged before use (a round trip on every request): a connection found
    dead is replaced and the request retried once (``dispatch.Dispatcher``).
    """
    url = settings.database_url
    if url.startswith("sqlite"):
        if url in ("sqlite://", "sqlite:///:memory:"):
            kwargs.setdefault("poolclass", StaticPool)
            kwargs.setdefault("connect_args", {"check_same_thread": False})
        else:
            settings.instance_path.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, **kwargs)
        tune_sqlite(engine)
        return engine
    kwargs.setdefault("pool_size", settings.db_pool_size)
    # Every session ends in a commit or a rollback before it closes (dispatch.Dispatcher), so
    # the pool's own rollback of each returned connection would be a redundant call.
    kwargs.setdefault("pool_reset_on_return", None)
    kwargs.setdefault("connect_args", {"connect_timeout": settings.db_connect_timeout})
    engine = create_engine(url, **kwargs)
    event.listen(engine, "handle_error", _on_a_standby_is_disconnected)
    return engine


#: SQLSTATE of a write refused by a read-only server: a standby, or a primary since demoted.
READ_ONLY_SQL_TRANSACTION = "25006"


def _on_a_standby_is_disconnected(context: ExceptionContext) -> None:
    """A connection on a read-only server is treated like a dead one (SQLAlchemy's documented ``is_disconnect``).

    After a failover a pooled connection can still be open on the old primary,
    now a standby, which refuses every write. Marked as a disconnect, the pool
    drops it and every connection opened before it, and the dispatcher runs the
    request again on a fresh one: with libpq's ``target_session_attrs=read-write``
    in a multi-host URL (docs/deploy.md), that one opens on whichever host is the
    primary now. Nothing was written by the refused statement.
    """
    if getattr(context.original_exception, "sqlstate", None) == READ_ONLY_SQL_TRANSACTION:
        context.is_disconnect = True


def describe_error(exc: Exception) -> str:
    """Class and first line of a driver error; never the SQL parameters (they hold user data)."""
    orig = getattr(exc, "orig", None) or exc
    first_line = str(orig).strip().splitlines()[0] if str(orig).strip() else ""
    return f"{type(orig).__name__}: {first_line}"


#: The repository root, where ``alembic.ini`` and ``alembic/`` live in a checkout.
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class MigrationsMissing(Exception):
    """No migration scripts were found: the service cannot know what schema it needs."""


def migrations_path() -> Path:
    """The folder of the migration scripts.

    An installed wheel carries them inside the package (``service/migrations``,
    see setup.cfg); a checkout keeps them in the top-level ``alembic/``, where
    Alembic's own tools and ``alembic.ini`` expect them.
    """
    packaged = Path(__file__).resolve().parent / "migrations"
    return packaged if (packaged / "env.py").is_file() else PROJECT_ROOT / "alembic"


def alembic_config(url: str | None = None) -> Config:
    """Alembic's configuration, usable from any working directory, checkout or wheel."""
    from alembic.config import Config

    location = migrations_path()
    ini = PROJECT_ROOT / "alembic.ini"
    # The ini (logging, revision file names) belongs to a checkout; a wheel needs none.
    config = Config(str(ini)) if location == PROJECT_ROOT / "alembic" and ini.is_file() else Config()
    config.set_main_option("script_location", str(location))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


@functools.cache
def expected_head() -> str:
    """The revision the code expects the database to be at.

    :raises MigrationsMissing: when there are no migration scripts to read it from.
    """
    from alembic.script import ScriptDirectory

    location = migrations_path()
    if not (location / "env.py").is_file():
        raise MigrationsMissing(f"no migration scripts in {location}")
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise MigrationsMissing(f"no revisions in {location / 'versions'}")
    return head


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Run ``alembic upgrade REVISION`` on ``engine``, leaving logging alone.

    Alembic gets a connection outside any transaction: on SQLite, env.py must
    switch foreign keys off before the migration's transaction begins.
    """
    from alembic import command

    config = alembic_config()
    config.attributes["configure_logging"] = False  # the host process owns logging
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def upgrade_to_head(engine: Engine, settings: Settings) -> None:
    """Run ``alembic upgrade head`` on ``engine``.

    Every worker of a host may do this at start-up; a file lock in the
    instance folder makes them take turns, so the first migrates and the
    others find nothing to do. (Several hosts should migrate once per release
    instead: see the deployment notes.)
    """
    settings.instance_path.mkdir(parents=True, exist_ok=True)
    with open(settings.instance_path / ".migrate.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            upgrade(engine)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def make_read_engine(engine: Engine, settings: Settings) -> Engine:
    """The engine read-only requests run on: autocommit, so no BEGIN and COMMIT round trips.

    Every read is one statement (``service.queries``), which is atomic on its own.
    On PostgreSQL the reads get a pool of their own whose connections are in
    autocommit from the start: switching a pooled connection into autocommit
    and back at every checkout cost 170 µs of CPU per request, more than the
    rest of SQLAlchemy's share of a read (bench/README.md). A sync worker
    serves one request at a time, so it holds at most one connection of each
    pool. A SQLite file gets the same (a second connection per worker; WAL readers
    never block the writer); an in-memory database, one connection, is shared.
    """
    same_database = dataclasses.replace(settings, database_url=engine.url.render_as_string(hide_password=False))
    if engine.dialect.name == "sqlite":
        if engine.url.database in (None, "", ":memory:"):
            return engine.execution_options(isolation_level="AUTOCOMMIT")  # one connection: the only database
        # A pool of its own too: switching a shared connection to autocommit at each checkout and back at
        # each return cost a signed-in hit 130 µs and a miss 160 µs (bench/profile_layers.py).
        return make_engine(same_database, isolation_level="AUTOCOMMIT", execution_options={READS_ONLY: True})
    return make_engine(same_database, isolation_level="AUTOCOMMIT")


def make_session_factory(bind: Engine | Connection, **kwargs: Any) -> sessionmaker[Session]:
    """Return the per-request session factory.

    ``expire_on_commit=False``: the response is serialised before the commit, and
    nothing should reload after it.
    """
    kwargs.setdefault("expire_on_commit", False)
    return sessionmaker(bind=bind, **kwargs)


def tune_sqlite(engine: Engine) -> None:
    """Make a SQLite engine transactional (BEGIN emitted by SQLAlchemy), with foreign keys, WAL and a busy timeout."""

    # pysqlite's own transaction handling defers BEGIN and breaks SAVEPOINT;
    # SQLAlchemy's documented recipe is to switch it off and emit BEGIN here.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        options = connection.get_execution_options()
        if options.get("isolation_level") == "AUTOCOMMIT" or options.get(READS_ONLY):
            return  # a read-only request: each statement is its own transaction
        connection.exec_driver_sql("BEGIN IMMEDIATE" if options.get(WRITE_INTENT) else "BEGIN")


@dataclasses.dataclass(frozen=True)
class Database:
    """What a request needs of the database, in one object: sessions for its writes, and where its reads run.

    :param sessions: the per-request session factory, bound to the write engine.
    :param read_engine: the engine safe requests read on, in autocommit (``make_read_engine``);
        None when reads run in the request's session (tests that keep each test in one transaction).
    """

    sessions: sessionmaker[Session]
    read_engine: Engine | None = None

    @classmethod
    def for_settings(cls, settings: Settings) -> Database:
        """Engines of its own for ``settings.database_url``, migrated first if ``auto_migrate`` says so."""
        engine = make_engine(settings)
        read_engine = make_read_engine(engine, settings)
        if settings.auto_migrate:
            upgrade_to_head(engine, settings)
            # Drop the migration's pooled connection: a server that forks after
            # create_app (gunicorn --preload) must not share it between workers.
            engine.dispose()
        return cls(make_session_factory(engine), read_engine)

    @classmethod
    def on(cls, engine: Engine, read_engine: Engine | None = None) -> Database:
        """Sessions and reads on a caller's engine, which the caller disposes of.

        :param read_engine: where reads run; by default ``engine``'s autocommit
            twin, so that no pool here outlives the caller's.
        """
        reads = read_engine if read_engine is not None else engine.execution_options(isolation_level="AUTOCOMMIT")
        return cls(make_session_factory(engine), reads)

    def engines(self) -> dict[str, Engine]:
        """The engines by the pool they draw from: ``write`` and ``read`` (one pool for both on SQLite)."""
        found = {"write": self.sessions.kw.get("bind"), "read": self.read_engine}
        return {pool: engine for pool, engine in found.items() if isinstance(engine, Engine)}
