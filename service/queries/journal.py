"""The journal of invalidations on the database every host shares: written by a write, read on by every host.

A write's row is added just before its commit (``record``), so it exists
exactly when the write committed. Readers (``service.shared_reads.delivery``)
read on from a *position* that says which rows they may not have seen yet:

- on PostgreSQL, the snapshot of their last read: ``xmax`` and the
  transactions in progress then (``xip``). A row whose transaction had ended
  by that snapshot was visible to the read that followed it; any other row's
  transaction id is in ``xip`` or at least ``xmax``. Ids from a sequence are
  handed out in one order and committed in another, so reading on from the
  highest id seen would miss a row committed late; a transaction held open
  costs one entry of ``xip``, not a reread of everything since it began.
- on SQLite, the next id: one writer commits at a time, in id order.

A position is a short string (kept in the shared cache beside what it says
was delivered there, ``delivery``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import BigInteger, Text, cast, delete, func, insert, or_, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from service.models import CacheInvalidation, utcnow

#: One row of the journal as readers get it: its id and its version digests.
Row = tuple[int, list[str]]

_SNAPSHOT = text(
    "SELECT CAST(CAST(pg_snapshot_xmax(s) AS text) AS bigint),"
    " ARRAY(SELECT CAST(CAST(x AS text) AS bigint) FROM pg_snapshot_xip(s) AS x)"
    " FROM pg_current_snapshot() AS s"
)


class Journal:
    """The ``cache_invalidations`` rows on ``engine``, read in autocommit (each read is its own statement).

    :param engine: the primary's engine (a replica could be behind what it says was written).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.by_transaction = engine.dialect.name == "postgresql"

    def record(self, session: Session, digests: Sequence[str]) -> int:
        """Add the row of a write's ``digests`` in the write's transaction; its id."""
        values: dict[str, object] = {"digests": " ".join(digests), "created_at": utcnow()}
        if self.by_transaction:
            values["tx"] = cast(cast(func.pg_current_xact_id(), Text), BigInteger)
        stmt = insert(CacheInvalidation).values(**values).returning(CacheInvalidation.id)
        return int(session.execute(stmt).scalar_one())

    def read_on(self, position: str | None, window_seconds: float) -> tuple[list[Row], str]:
        """The rows past ``position`` (without one: the last ``window_seconds``), and the position after them."""
        with self.engine.connect() as connection:
            if self.by_transaction:
                xmax, xip = connection.execute(_SNAPSHOT).one()  # before the rows: what it says ended, they show
                stmt = select(CacheInvalidation.id, CacheInvalidation.digests)
                past = _parse_snapshot(position)
                if past is None:
                    stmt = stmt.where(CacheInvalidation.created_at >= utcnow() - timedelta(seconds=window_seconds))
                else:
                    since, running = past
                    pending = CacheInvalidation.tx >= since
                    stmt = stmt.where(or_(pending, CacheInvalidation.tx.in_(running)) if running else pending)
                rows = connection.execute(stmt.order_by(CacheInvalidation.id)).all()
                after = " ".join(["s", str(xmax), *map(str, xip)])
            else:
                stmt = select(CacheInvalidation.id, CacheInvalidation.digests)
                next_id = _parse_next_id(position)
                if next_id is None:
                    stmt = stmt.where(CacheInvalidation.created_at >= utcnow() - timedelta(seconds=window_seconds))
                else:
                    stmt = stmt.where(CacheInvalidation.id >= next_id)
                rows = connection.execute(stmt.order_by(CacheInvalidation.id)).all()
                last = rows[-1].id + 1 if rows else (next_id if next_id is not None else self._next_id(connection))
                after = f"i {last}"
        return [(row.id, row.digests.split()) for row in rows], after

    def prune(self, older_than_seconds: float) -> int:
        """Delete the rows older than any cached answer can be; how many."""
        cutoff = utcnow() - timedelta(seconds=older_than_seconds)
        with self.engine.connect() as connection:
            return connection.execute(delete(CacheInvalidation).where(CacheInvalidation.created_at < cutoff)).rowcount

    @staticmethod
    def _next_id(connection: Connection) -> int:
        found = connection.execute(select(func.max(CacheInvalidation.id))).scalar()
        return int(found or 0) + 1


def _parse_snapshot(position: str | None) -> tuple[int, list[int]] | None:
    """``(xmax, xip)`` of a PostgreSQL position; None when it is missing or of another kind."""
    words = (position or "").split()
    if not words or words[0] != "s" or len(words) < 2:
        return None
    try:
        numbers = [int(word) for word in words[1:]]
    except ValueError:
        return None
    return numbers[0], numbers[1:]


def _parse_next_id(position: str | None) -> int | None:
    words = (position or "").split()
    if len(words) != 2 or words[0] != "i" or not words[1].isdigit():
        return None
    return int(words[1])
