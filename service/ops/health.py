"""Readiness: can this process serve requests right now?

Imports ``service.db`` (for the expected Alembic head) besides the usual ops
dependencies: knowing which revision the code needs is a deployment fact.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from service import db
from service.errors import ApiError


def readiness(
    session: Session,
    probes: Mapping[str, Callable[[], bool]] | None = None,
    required: frozenset[str] = frozenset(),
) -> dict[str, str]:
    """Check the database, its schema revision, and the shared storages.

    A storage the service can do without (a fail-open rate limiter, the cache)
    is reported but does not make the host unready: draining every host
    because Redis blinked would turn a degraded service into an outage.

    :param probes: name → zero-argument check of a shared storage.
    :param required: names of probes whose failure makes the host unready.
    :returns: ``{"database": "ok", "migrations": "ok", <probe>: "ok"|"unavailable"}``.
    :raises ApiError: 503 naming what is not ready.
    """
    try:
        session.execute(text("SELECT 1"))
        current = session.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except SQLAlchemyError:
        session.rollback()
        raise ApiError.unavailable("database") from None
    try:
        expected = db.expected_head()
    except db.MigrationsMissing as missing:
        raise ApiError.unavailable("migrations", retry_after=30, message=str(missing)) from None
    if current != expected:
        raise ApiError.unavailable("migrations", retry_after=30, message=f"at {current}, expected {expected}")
    checks = {"database": "ok", "migrations": "ok"}
    for name, probe in (probes or {}).items():
        try:
            healthy = probe()
        except Exception:
            healthy = False
        checks[name] = "ok" if healthy else "unavailable"
        if not healthy and name in required:
            raise ApiError.unavailable(name)
    return checks
