"""The unit of work's rules: one commit with its hooks in order, and a rollback or a refusal that changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from service.errors import ApiError
from service.shared_reads import surrogates
from service.unit_of_work import UnitOfWork


class Watcher:
    """Records what it is told, in order; refuses the commit when asked to."""

    def __init__(self, events: list[str], refuse: bool = False) -> None:
        self.events, self.refuse = events, refuse

    def before_commit(self, changed: frozenset[str], session: Session) -> str:
        self.events.append(f"watcher before {sorted(changed)}")
        if self.refuse:
            raise ApiError.unavailable("cache")
        return "receipt"

    def after_commit(self, changed: frozenset[str], receipt: str) -> None:
        self.events.append(f"watcher after {sorted(changed)} with {receipt}")


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = create_engine(f"sqlite:///{tmp_path / 'work.db'}")  # a file: each session its own connection
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE notes (body TEXT)"))
    yield sessionmaker(engine)
    engine.dispose()


def _notes(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as session:
        return list(session.execute(text("SELECT body FROM notes")).scalars())


def _write(work: UnitOfWork, body: str, *changed: str) -> None:
    work.session.execute(text("INSERT INTO notes VALUES (:b)"), {"b": body})
    surrogates.record(work.session.info, changed)


def test_a_commit_runs_its_hooks_then_the_watchers_around_the_commit(sessions: sessionmaker[Session]) -> None:
    events: list[str] = []
    work = UnitOfWork(sessions, (Watcher(events),))
    _write(work, "kept", "article:a")
    work.before_commit(lambda changed: events.append(f"hook before, committed: {_notes(sessions)}"))
    work.after_commit(lambda changed: events.append(f"hook after, committed: {_notes(sessions)}"))

    work.commit()

    assert events == [
        "hook before, committed: []",
        "watcher before ['article:a']",
        "watcher after ['article:a'] with receipt",
        "hook after, committed: ['kept']",
    ]


def test_a_watcher_that_refuses_leaves_nothing_committed(sessions: sessionmaker[Session]) -> None:
    events: list[str] = []
    work = UnitOfWork(sessions, (Watcher(events, refuse=True),))
    _write(work, "refused", "article:a")
    work.after_commit(lambda changed: events.append("hook after"))

    with pytest.raises(ApiError):
        work.commit()
    work.rollback()
    work.close()

    assert _notes(sessions) == [] and "hook after" not in events


def test_a_rollback_forgets_what_was_recorded_and_the_hooks(sessions: sessionmaker[Session]) -> None:
    events: list[str] = []
    work = UnitOfWork(sessions, (Watcher(events),))
    _write(work, "rolled back", "article:a")
    work.after_commit(lambda changed: events.append("stale hook"))

    work.rollback()
    _write(work, "kept")
    work.commit()

    assert _notes(sessions) == ["kept"] and events == ["watcher before []", "watcher after [] with receipt"]


def test_a_unit_of_work_never_opened_commits_nothing(sessions: sessionmaker[Session]) -> None:
    events: list[str] = []
    work = UnitOfWork(sessions, (Watcher(events),))

    work.commit()

    assert not work.opened and events == []
