"""``Idempotency-Key``: a signed-in client may retry a write without applying it twice.

A client that sent a write and got no answer (a host died, the balancer said
503) cannot know whether it was applied. Sent with an ``Idempotency-Key``
header (any 1 to 255 visible ASCII characters but a comma, that the client
makes up, say a UUID; a comma is what a server joins two header lines with,
so ``a,b`` is two keys and refused), the write claims the key in its own transaction and stores its answer
there; a retry with the same key then gets that answer (``Idempotent-Replayed:
true``) and changes nothing. A write that failed stored nothing, so its retry
runs. Keys are the user's own and are kept for :data:`KEPT_FOR`.

Two requests with one key at once: on PostgreSQL the second waits on the
unique index until the first ends, then replays it (or runs, if the first was
rolled back); on SQLite writers already take turns. The same key on a
different request (method, path, query or body) is refused with 422.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.errors import ApiError
from service.models import IdempotencyKey, utcnow

#: The request header, and the WSGI environ key it arrives under.
HEADER = "Idempotency-Key"
ENVIRON_KEY = "HTTP_IDEMPOTENCY_KEY"
#: How long a key answers retries.
KEPT_FOR = timedelta(days=1)

#: What a key may be, as a regular expression both Python and the OpenAPI document (ECMA-262) read alike.
PATTERN = r"^[\x21-\x2b\x2d-\x7e]{1,255}$"
_VALID = re.compile(PATTERN)


@dataclass(frozen=True)
class Replay:
    """The answer the first write with the key got."""

    status: int
    body: bytes


def claim(session: Session, user_id: int, key: str, fingerprint: str) -> Replay | None:
    """Claim ``key`` for the write about to run, or return the answer of the write that claimed it.

    Also deletes the user's keys older than :data:`KEPT_FOR`.

    :raises ApiError: 400 for a malformed key, 422 for a key used on another
        request, 409 while the write that claimed it is still running.
    """
    if not _VALID.fullmatch(key):
        raise ApiError.bad_request(HEADER, "must be one key of 1 to 255 visible ASCII characters but a comma")
    session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.user_id == user_id, IdempotencyKey.created_at < utcnow() - KEPT_FOR)
    )
    try:
        with session.begin_nested():
            session.execute(
                insert(IdempotencyKey).values(user_id=user_id, key=key, fingerprint=fingerprint, created_at=utcnow())
            )
        return None
    except IntegrityError:
        pass
    found = session.execute(
        select(IdempotencyKey.fingerprint, IdempotencyKey.status, IdempotencyKey.body).where(
            IdempotencyKey.user_id == user_id, IdempotencyKey.key == key
        )
    ).one_or_none()
    if found is None or found.status is None:  # claimed by a write not yet committed (a snapshot older than it)
        raise ApiError.conflict(HEADER, "is in use by a request still running; retry")
    if found.fingerprint != fingerprint:
        raise ApiError.invalid({HEADER: ["was used for a different request"]})
    return Replay(found.status, found.body or b"")


def answered(session: Session, user_id: int, key: str, status: int, body: bytes) -> None:
    """Store the write's answer under its claimed key (in the write's transaction)."""
    session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
        .values(status=status, body=body)
    )
