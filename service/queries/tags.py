"""The tags in use."""

from __future__ import annotations

import functools

from sqlalchemy import Executable, select

from service.models import Tag
from service.queries.rows import Reads, connection_of


@functools.cache
def _tags_statement() -> Executable:
    # In use: carried by an article (the kept count, models.totals), not a probe of article_tags per tag.
    return select(Tag.name).where(Tag.articles_count > 0).order_by(Tag.name)


def tag_names(reads: Reads) -> list[str]:
    """Every tag carried by at least one article, alphabetical, in one statement."""
    return list(connection_of(reads).scalars(_tags_statement()).all())  # one fetch, not one per row
