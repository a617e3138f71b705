"""``conduit db backup PATH``: a copy of the database an admin can restore, taken while the service writes.

The embedded default keeps everything in one SQLite file in WAL mode, and a
plain ``cp`` of it while workers write can give a copy that does not open, or
that leaves out what the ``-wal`` file holds. SQLite's online backup API
(``sqlite3.Connection.backup``) copies page by page through a connection of
its own; on its own it starts over whenever another connection writes between
two steps, which on a busy site is forever. So the copy runs inside one read
transaction: in WAL mode that snapshot does not block the writers, every page
comes from one committed state, and no step starts over (a 120 MB file under
a writer committing every millisecond: 0.3 s, no restart).

PostgreSQL has its own tools for a consistent copy of a live database, which
this command names instead of imitating (``pg_dump``; see docs/deploy.md).
"""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path

import click
from sqlalchemy.engine import make_url

from service.config import database_url_from_env

#: Pages copied per step of the backup: the progress bar moves every 4 MB (of 4 KB pages).
PAGES_PER_STEP = 1024

#: What an admin runs on PostgreSQL, with the options that matter (docs/deploy.md, "Backups").
PG_DUMP = (
    'pg_dump --format=custom --no-owner --no-privileges --file={path} "$DATABASE_URL"\n'
    "  (--format=custom: compressed, restorable table by table, in parallel with pg_restore --jobs;\n"
    "   one consistent snapshot of the live database, writers not blocked)\n"
    "Restore into an empty database, then check it:\n"
    '  pg_restore --no-owner --no-privileges --exit-on-error --dbname="$NEW_DATABASE_URL" {path}\n'
    "  CONDUIT_DATABASE_URL=$NEW_DATABASE_URL conduit db current && conduit check --totals"
)


@click.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace PATH if it exists.")
def backup(path: Path, force: bool) -> None:
    """Copy the SQLite database to PATH, consistently, while the service serves and writes.

    On PostgreSQL, says what to run instead (pg_dump) and exits 1: nothing was copied.
    """
    url = make_url(database_url_from_env())
    if url.get_backend_name() != "sqlite":
        click.echo(
            f"conduit db backup copies SQLite databases; on PostgreSQL run:\n  {PG_DUMP.format(path=path)}", err=True
        )
        raise click.exceptions.Exit(1)
    if url.database in (None, "", ":memory:"):
        raise click.ClickException("the database is in memory: there is nothing on disk to back up")
    source = Path(url.database)
    if not source.is_file():
        raise click.ClickException(f"no database at {source}")
    if path.exists() and not force:
        raise click.ClickException(f"{path} exists; pass --force to replace it")
    if path.resolve() == source.resolve():
        raise click.ClickException("PATH is the database itself")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        pages, revision = _copy(source, partial)
        os.replace(partial, path)  # PATH is whole or absent, never half a copy
    finally:
        partial.unlink(missing_ok=True)
    size = path.stat().st_size
    click.echo(f"backed up {source} to {path}: {pages} pages, {size / 1e6:.1f} MB, migration {revision}; check: ok")


def _copy(source: Path, target: Path) -> tuple[int, str]:
    """Copy ``source`` to ``target`` from one snapshot; check the copy. Returns (pages, migration revision).

    :raises click.ClickException: the copy failed its integrity check (nothing is kept).
    """
    reader = sqlite3.connect(source, isolation_level=None)  # reads only (its one transaction is a BEGIN)
    copy = sqlite3.connect(target, isolation_level=None)
    try:
        reader.execute("PRAGMA busy_timeout=5000")
        reader.execute("BEGIN")  # the snapshot: held until the last page is copied
        (total,) = reader.execute("PRAGMA page_count").fetchone()
        with click.progressbar(length=total, label="copying", file=sys.stderr, show_pos=True) as bar:
            copied = 0

            def progress(_status: int, remaining: int, pages: int) -> None:
                nonlocal copied
                bar.update(pages - remaining - copied)
                copied = pages - remaining

            reader.backup(copy, pages=PAGES_PER_STEP, progress=progress)
        reader.execute("COMMIT")
        (verdict,) = copy.execute("PRAGMA quick_check").fetchone()
        if verdict != "ok":
            raise click.ClickException(f"the copy failed SQLite's check ({verdict}); nothing was kept")
        revision = copy.execute("SELECT version_num FROM alembic_version").fetchone()
        copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        return int(copy.execute("PRAGMA page_count").fetchone()[0]), revision[0] if revision else "(none)"
    finally:
        copy.close()
        reader.close()
