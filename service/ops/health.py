"""Readiness: can this process serve requests right now?

One set of checks serves both the ``/readyz`` view and ``conduit check``.
Imports ``service.db`` (for the expected Alembic head) besides the usual ops
dependencies: knowing which revision the code needs is a deployment fact.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from service import db
from service.errors import ApiError
from service.models import ARTICLES_TOTAL, RECOUNTS

#: Seconds a client should wait before asking again, by what is not ready (a migration takes a while).
_RETRY_AFTER = {"migrations": 30}


def checks(session: Session, probes: Mapping[str, Callable[[], bool]] | None = None) -> dict[str, str]:
    """Run every check: the database, its schema revision, each shared storage.

    :param probes: name → zero-argument check of a shared storage.
    :returns: ``{"database": ..., "migrations": ..., <probe>: ...}``, each ``"ok"``
        or what is wrong (``"unavailable"``, ``"at <revision>, expected <head>"``).
    """
    found: dict[str, str] = {}
    try:
        session.execute(text("SELECT 1"))
        found["database"] = "ok"
        current = session.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except SQLAlchemyError:
        session.rollback()
        found.setdefault("database", "unavailable")
        current = None
    if found["database"] == "ok":
        try:
            expected = db.expected_head()
        except db.MigrationsMissing as missing:
            found["migrations"] = str(missing)
        else:
            found["migrations"] = "ok" if current == expected else f"at {current}, expected {expected}"
    for name, probe in (probes or {}).items():
        try:
            healthy = probe()
        except Exception:
            healthy = False
        found[name] = "ok" if healthy else "unavailable"
    return found


def totals_mismatches(session: Session) -> list[str]:
    """Compare every kept total (``models.totals``) with a real count: what differs, if anything.

    Counts every table once (seconds at a million articles): for ``conduit check --totals``, not for readiness.
    """
    found = []
    for (table, column), truth in RECOUNTS.items():
        wrong = session.execute(text(f"SELECT count(*) FROM {table} WHERE {column} <> {truth}")).scalar_one()
        if wrong:
            found.append(f"{table}.{column} wrong on {wrong} rows")
    kept = session.execute(text("SELECT value FROM totals WHERE name = :n"), {"n": ARTICLES_TOTAL}).scalar()
    counted = session.execute(text("SELECT count(*) FROM articles")).scalar_one()
    if kept != counted:
        found.append(f"totals.{ARTICLES_TOTAL} is {kept}, counted {counted}")
    return found


@dataclass(frozen=True)
class Storages:
    """The shared storages readiness reports on besides the database.

    :param probes: name → zero-argument check (the cache accepts a write; the counters answer).
    :param required: the names whose failure makes the host unready (the counters when the limiter fails closed).
    """

    probes: Mapping[str, Callable[[], bool]] = field(default_factory=dict)
    required: frozenset[str] = frozenset()


def readiness(session: Session, storages: Storages = Storages()) -> dict[str, str]:
    """The checks, for a load balancer: 503 when the host cannot serve.

    A storage the service can do without (a fail-open rate limiter, the cache)
    is reported but does not make the host unready: draining every host
    because Redis blinked would turn a degraded service into an outage.

    :raises ApiError: 503 naming the first check that failed (database, migrations, a required storage).
    """
    found = checks(session, storages.probes)
    for name in ("database", "migrations", *sorted(storages.required)):
        if name in found and found[name] != "ok":
            raise ApiError.unavailable(name, retry_after=_RETRY_AFTER.get(name, 5), message=found[name])
    return found
