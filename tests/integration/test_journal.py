"""The journal of invalidations: every committed row read exactly once, whatever order transactions commit in."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from service import db as service_db
from service.queries.journal import Journal
from tests.conftest import make_settings


def _recorded(engine: Engine, journal: Journal, digests: list[str], commit: bool = True) -> int:
    with Session(engine) as session:
        row = journal.record(session, digests)
        if commit:
            session.commit()
        else:
            session.rollback()
    return row


def test_committed_rows_are_read_once_in_order_and_rolled_back_ones_never(real_engine: Engine) -> None:
    journal = Journal(real_engine)
    first = _recorded(real_engine, journal, ["aa", "bb"])
    window, position = journal.read_on(None, 60)  # no position: the rows of the last minute
    nothing, same = journal.read_on(position, 60)
    second = _recorded(real_engine, journal, ["cc"])
    _recorded(real_engine, journal, ["dd"], commit=False)
    third = _recorded(real_engine, journal, ["ee"])
    later, _ = journal.read_on(same, 60)
    pruned = journal.prune(0)
    after_prune = _recorded(real_engine, journal, ["ff"])
    past_prune, _ = journal.read_on(same, 60)

    assert window == [(first, ["aa", "bb"])]
    assert nothing == []
    assert later == [(second, ["cc"]), (third, ["ee"])]
    assert pruned == 3
    assert after_prune > third  # ids never go back, so a position past the deleted rows still reads the new one
    assert [row for row, _ in past_prune] == [after_prune]


def test_a_transaction_that_commits_after_a_later_one_is_still_read(throwaway_pg_url: str, tmp_path: Path) -> None:
    """PostgreSQL hands ids out in one order and commits in another: the position is a snapshot, not an id."""
    engine = service_db.make_engine(make_settings(database_url=throwaway_pg_url, instance_path=tmp_path))
    try:
        service_db.upgrade(engine)
        journal = Journal(engine)
        _, start = journal.read_on(None, 60)
        with Session(engine) as slow:
            early = journal.record(slow, ["slow"])  # its transaction id and row id come first...
            late = _recorded(engine, journal, ["quick"])  # ...but this one commits first
            seen_first, position = journal.read_on(start, 60)
            slow.commit()
        seen_next, position = journal.read_on(position, 60)
        seen_then, _ = journal.read_on(position, 60)
    finally:
        engine.dispose()

    assert early < late
    assert seen_first == [(late, ["quick"])]
    assert [row for row, _ in seen_next] == [early]  # the late commit, not skipped by a position past its id
    assert seen_then == []


@pytest.mark.parametrize("position", ["", "garbage", "s", "s x 1", "i -3", "i 1 2"])
def test_a_position_that_makes_no_sense_reads_the_window(real_engine: Engine, position: str) -> None:
    journal = Journal(real_engine)
    row = _recorded(real_engine, journal, ["aa"])
    rows, _ = journal.read_on(position, 60)
    assert rows == [(row, ["aa"])]
