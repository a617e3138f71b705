"""Tags."""

from __future__ import annotations

from service import queries


def list_tags(reads: queries.Reads) -> list[str]:
    """Every tag in use, alphabetical, without a cap."""
    return queries.tag_names(reads)
