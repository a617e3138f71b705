"""The tags in use."""

from __future__ import annotations

import functools

from sqlalchemy import (
    Executable,
    exists,
    select,
)

from service.models import Tag, article_tags
from service.queries.rows import Reads, connection_of


@functools.cache
def _tags_statement() -> Executable:
    in_use = exists().where(article_tags.c.tag_id == Tag.id)
    return select(Tag.name).where(in_use).order_by(Tag.name)


def tag_names(reads: Reads) -> list[str]:
    """Every tag carried by at least one article, alphabetical, in one statement."""
    return list(connection_of(reads).scalars(_tags_statement()).all())  # one fetch, not one per row
