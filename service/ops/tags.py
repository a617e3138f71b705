"""Tags."""

from __future__ import annotations

from sqlalchemy.orm import Session

from service import queries


def list_tags(session: Session) -> list[str]:
    """Every tag in use, alphabetical, without a cap."""
    return queries.tag_names(session)
