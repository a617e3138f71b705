"""Declarative base, constraint naming convention and UTC timestamps.

Constraint names come from the naming convention, never by hand, so Alembic
autogenerate and downgrades see stable names on every database.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Column, DateTime, ForeignKey, Index, MetaData, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base class of every model."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    PostgreSQL stores ``timestamptz``; SQLite has no time zone, so values are
    stored as naive UTC and made aware again when read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use UTC-aware values")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        stored: datetime = value
        return stored.replace(tzinfo=UTC) if stored.tzinfo is None else stored.astimezone(UTC)


def utcnow() -> datetime:
    """Now, in UTC, aware."""
    return datetime.now(UTC)


#: The largest value of the database's integer columns (ids, and so offsets): anything larger
#: cannot name a row and must not reach SQL.
MAX_INT = 2**31 - 1
#: The resolution timestamps have on the wire (ISO-8601 with milliseconds).
WIRE_RESOLUTION = timedelta(milliseconds=1)


def later_than(previous: datetime, now: datetime | None = None) -> datetime:
    """Return a time that is ``now`` but shows strictly after ``previous`` on the wire.

    Two writes within one millisecond would otherwise print the same
    ``updatedAt``, and clients compare those strings.
    """
    now = now or utcnow()
    floor = previous.replace(microsecond=previous.microsecond // 1000 * 1000) + WIRE_RESOLUTION
    return max(now, floor)


class Timestamps:
    """``created_at`` and ``updated_at``, set by Python so precision is the same everywhere."""

    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # A new row's updated_at equals its created_at to the microsecond.
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=lambda ctx: ctx.get_current_parameters()["created_at"]
    )


def link_table(
    name: str, first: tuple[str, str], second: tuple[str, str], *extra: Column[Any], by_second: tuple[str, ...] = ()
) -> Table:
    """A many-to-many link: ``(column, "table.id")`` twice, and ``extra`` columns.

    Both columns form the primary key (which serves lookups by the first) and
    cascade on delete; the second has an index of its own (lookups by it),
    followed by the ``by_second`` columns when lookups by it are ordered by them.
    """
    return Table(
        name,
        Base.metadata,
        *(
            Column(column, ForeignKey(target, ondelete="CASCADE"), primary_key=True)
            for column, target in (first, second)
        ),
        *extra,
        Index(None, second[0], *by_second),
    )
