"""``conduit check``: the readiness check, from the command line, with the configuration's own checks."""

from __future__ import annotations

from collections.abc import Callable

import click

from service import db
from service.cli.base import database_settings
from service.config import ConfigError, Settings, secret_problem
from service.ops import health
from service.stores import make_cache, make_limiter, make_shared_reads, readiness_probes


@click.command()
@click.option("--totals", is_flag=True, help="Also count every table and compare with the kept totals (slow).")
def check(totals: bool) -> None:
    """Validate the configuration and reach every backing service; exit 1 on any problem.

    The same checks as ``GET /readyz`` (database, migrations, cache, rate-limit
    storage), except that every failure counts, not only those that make a host
    unready. With ``--totals``, the totals the database keeps (``articlesCount``,
    ``favoritesCount``) are checked against real counts.
    """
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
        settings = database_settings()
    strength = secret_problem(settings.secret_key)
    if settings.env == "production" or strength is None:
        report(strength is None, "secret key", "strong" if strength is None else strength)
    else:
        click.echo(f"warn  secret key: {strength} (acceptable outside production)")
    probes: dict[str, Callable[[], bool]] = {}
    try:
        limiter = make_limiter(settings) if settings.ratelimit_enabled else None
        probes, _ = readiness_probes(make_shared_reads(settings, make_cache(settings)), limiter, settings)
    except ConfigError as exc:
        report(False, "storages", str(exc))
    engine = db.make_engine(settings)
    try:
        with db.make_session_factory(engine)() as session:
            found = health.checks(session, probes)
            for name, state in found.items():
                report(state == "ok", name, state)
            if totals and found.get("migrations") == "ok":
                wrong = health.totals_mismatches(session)
                report(not wrong, "kept totals", "; ".join(wrong) or "equal to real counts")
    finally:
        engine.dispose()
    if problems:
        raise click.exceptions.Exit(1)
