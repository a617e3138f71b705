"""The unit of work: one transaction, begun, committed or rolled back in one place, with hooks around the commit.

The API's dispatcher and the admin commands (``cli.base.transaction``) both
commit through it, so a write forgets what it changed at the same moments
whoever made it (cosmicpython, chapter 6; the SQLAlchemy ``Session`` is the
unit of work proper, this is its boundary):

1. the keys the ops recorded as changed (``shared_reads.surrogates.record``) are taken;
2. the hooks of this transaction run, then each watcher's ``before_commit``,
   in the transaction (a cache every host shares is told through a journal
   row written here; a watcher that raises refuses the commit, and nothing
   changes);
3. the session commits;
4. each watcher's ``after_commit``, given what its ``before_commit`` returned,
   then this transaction's after-commit hooks (the cache bumped, a
   revocation counted).

A rollback forgets the recorded keys and the hooks. Imports the surrogate
keys' bookkeeping only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from sqlalchemy.orm import Session

from service.shared_reads import surrogates

logger = logging.getLogger(__name__)

#: A hook of one transaction; it is given the surrogate keys the transaction changed.
Hook = Callable[[frozenset[str]], Any]


class CommitWatcher(Protocol):
    """Told of every commit's changes: the shared reads are one (``SharedReads``)."""

    def before_commit(self, changed: frozenset[str], session: Session) -> Any:
        """Called in the transaction, before the commit; raise to refuse it. Returns what ``after_commit`` gets."""
        ...

    def after_commit(self, changed: frozenset[str], receipt: Any) -> Any:
        """Called once the transaction has committed, with what ``before_commit`` returned."""
        ...


class UnitOfWork:
    """One transaction on a session opened on first use.

    :param open_session: makes the session (on first use of :attr:`session`).
    :param watchers: told of every commit (:class:`CommitWatcher`).
    """

    def __init__(self, open_session: Callable[[], Session], watchers: Sequence[CommitWatcher] = ()) -> None:
        self._open = open_session
        self._session: Session | None = None
        self.watchers = watchers
        self._before: list[Hook] = []
        self._after: list[Hook] = []

    @property
    def session(self) -> Session:
        """The transaction's session, opened on first use."""
        if self._session is None:
            self._session = self._open()
        return self._session

    @property
    def opened(self) -> bool:
        """Whether the session was ever asked for (a request answered without the database opened none)."""
        return self._session is not None

    def begin(self, **execution_options: Any) -> None:
        """Begin the transaction on a connection with these options (a write's lock, an isolation level)."""
        self.session.connection(execution_options=execution_options)

    def before_commit(self, hook: Hook) -> None:
        """Run ``hook`` just before this transaction commits, in it (an idempotent write's answer is kept so)."""
        self._before.append(hook)

    def after_commit(self, hook: Hook) -> None:
        """Run ``hook`` once this transaction has committed."""
        self._after.append(hook)

    def commit(self) -> None:
        """Commit, with the hooks and the watchers around it (see the module docstring)."""
        if self._session is None:
            return
        changed = surrogates.recorded(self._session.info)
        before, after, self._before, self._after = self._before, self._after, [], []
        for hook in before:
            hook(changed)
        receipts = [watcher.before_commit(changed, self._session) for watcher in self.watchers]
        self._session.commit()
        for watcher, receipt in zip(self.watchers, receipts, strict=True):
            watcher.after_commit(changed, receipt)
        for hook in after:
            hook(changed)

    def rollback(self) -> None:
        """Roll back; what the transaction recorded and its hooks are forgotten."""
        self._before, self._after = [], []
        if self._session is None:
            return
        surrogates.recorded(self._session.info)  # nothing was changed after all
        try:
            self._session.rollback()
        except Exception:  # the connection may already be gone; close() will discard it
            logger.warning("rollback failed", exc_info=True)

    def close(self) -> None:
        """Release the session; the next use of :attr:`session` opens another."""
        session, self._session = self._session, None
        if session is not None:
            session.close()
