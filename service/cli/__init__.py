"""The ``conduit`` admin command: serve, migrate, manage users, seed, check.

Like ``wsgi.py`` this is a composition root: it reads the environment and
owns the transaction of each command (commit on success, roll back on error);
the work itself is done by the same operations the API uses.
Errors go to stderr with a non-zero exit code.
"""

from __future__ import annotations

import os
import sys

import click

from service.cli.backup import backup
from service.cli.base import Group, load_settings
from service.cli.check import check
from service.cli.migrations import db_group
from service.cli.seed import seed
from service.cli.users import users


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Administer the Conduit API service.

    Configuration comes from CONDUIT_* environment variables (see README).
    """


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

        settings = load_settings()
        configure_logging(settings)
        run_simple(host, port, create_app(settings), use_reloader=True, use_debugger=False)
        return
    argv = [sys.executable, "-m", "gunicorn", "-c", "python:service.gunicorn_conf", "--bind", f"{host}:{port}"]
    if workers:
        argv += ["--workers", str(workers)]
    os.execv(sys.executable, [*argv, "wsgi:application"])


db_group.add_command(backup)
for command in (db_group, users, seed, check):
    main.add_command(command)

if __name__ == "__main__":
    main()
