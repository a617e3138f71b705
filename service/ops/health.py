"""Readiness: can this process serve requests right now?

Imports ``service.db`` (for the expected Alembic head) besides the usual ops
dependencies: knowing which revision the code needs is a deployment fact.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from service import db
from service.errors import ApiError


def readiness(session: Session) -> dict[str, str]:
    """Check the database and its schema revision.

    :returns: ``{"database": "ok", "migrations": "ok"}``.
    :raises ApiError: 503 naming what is not ready.
    """
    try:
        session.execute(text("SELECT 1"))
        current = session.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except SQLAlchemyError:
        session.rollback()
        raise ApiError.unavailable("database") from None
    expected = db.expected_head()
    if current != expected:
        raise ApiError(503, {"migrations": [f"at {current}, expected {expected}"]}, {"Retry-After": "30"})
    return {"database": "ok", "migrations": "ok"}
