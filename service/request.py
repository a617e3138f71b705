"""The request as views see it, and JSON in: the request type, body loading and validation messages.

``ApiRequest`` is a werkzeug request that knows the settings, opens the
database on first use (``db.Database``: a session in the request's unit of
work for a write, the autocommit read engine for a safe request) and carries
the authenticated user; views get nothing else. ``read_json``, ``load`` and
``flatten`` turn a body into what a schema loaded, or into the RealWorld 4xx it earns.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from marshmallow import Schema, ValidationError
from sqlalchemy import Connection
from sqlalchemy.orm import Session
from werkzeug.wrappers import Request

from service import auth, queries
from service.config import Settings
from service.db import Database
from service.errors import ApiError
from service.limiter import PendingCharge
from service.models import User
from service.unit_of_work import CommitWatcher, UnitOfWork


@dataclass(frozen=True)
class SignedIn:
    """A user together with the token just issued for them: what ``UserSchema`` dumps (its ``token`` field)."""

    user: User
    token: str

    def __getattr__(self, name: str) -> Any:
        return getattr(self.user, name)


class ApiRequest(Request):
    """A request with its settings, its unit of work and its authenticated user."""

    def __init__(
        self,
        environ: dict[str, Any],
        settings: Settings,
        database: Database,
        *,
        safe: bool,
        watchers: Sequence[CommitWatcher] = (),
    ) -> None:
        """:param safe: a GET, HEAD or OPTIONS: its reads run on the read engine, and it opens no transaction.
        :param watchers: told of the commit of a write (the shared reads).
        """
        super().__init__(environ)
        self.settings = settings
        self.safe = safe
        self.max_content_length = settings.max_body_bytes
        self._database = database
        self._read_engine = database.read_engine if safe else None
        #: The request's one transaction: the dispatcher begins and commits it.
        self.work = UnitOfWork(self._open_session, watchers)
        self.user: User | None = None
        self.claims: auth.Claims | None = None  # what the authenticated token says
        #: The rate-limit count the dispatcher owes for this request, if the middleware left it (``limiter``).
        self.pending_charge: PendingCharge | None = None
        #: The tokens this request issued (``sign_in``): an answer kept at rest is kept without them.
        self.issued_tokens: list[str] = []

    @cached_property
    def reads(self) -> queries.Reads:
        """What this request's read statements run on, opened on first use.

        A safe request given a read engine gets one of its connections (autocommit)
        and no Session: a Session's transaction bookkeeping cost more than the
        read's own share of SQLAlchemy (65 against 19 µs of CPU, bench/README.md).
        Otherwise the session, so that a write's reads see its pending changes.
        """
        if self._read_engine is None:
            return self.db
        return self._read_engine.connect()

    @property
    def db(self) -> Session:
        """This request's ORM session (the unit of work's); a safe request's shares its read connection."""
        return self.work.session

    def _open_session(self) -> Session:
        if self._read_engine is None:
            return self._database.sessions()
        return self._database.sessions(bind=self.reads)

    @property
    def viewer_id(self) -> int | None:
        """Whose view of a read this is: the signed-in user's id, or None for an anonymous reader."""
        return self.user.id if self.user is not None else None

    @property
    def authenticated_user(self) -> User:
        """The caller.

        :raises ApiError: 401 if the request carries no token.
        """
        if self.user is None:
            raise ApiError.unauthorized("is missing")
        return self.user

    @property
    def token(self) -> str | None:
        """The token the request was sent with, if any."""
        try:
            return auth.token_from_header(self.environ.get("HTTP_AUTHORIZATION"))
        except ApiError:
            return None

    def sign_in(self, user: User) -> SignedIn:
        """Pair ``user`` with a fresh token."""
        token = auth.issue_token(user.id, user.token_stamp, self.settings.secret_key, self.settings.token_ttl)
        self.issued_tokens.append(token)
        return SignedIn(user, token)

    def signed_in_as_asked(self) -> SignedIn:
        """The caller with the token the request carries.

        :raises ApiError: 401 if the request carries no token.
        """
        return SignedIn(self.authenticated_user, self.token or "")

    def close_db(self) -> None:
        """Release the session and the read connection, if opened; the next use opens others."""
        self.work.close()
        reads = self.__dict__.pop("reads", None)
        if isinstance(reads, Connection):
            reads.close()

    def close(self) -> None:
        """Release the session and the request's resources."""
        self.close_db()
        super().close()


def read_json(request: Request) -> Any:
    """Parse the request body as JSON.

    :raises ApiError: 415 for another content type, 400 for a body that is not
        JSON; werkzeug's 413 for a body over the size limit.
    """
    mimetype = request.mimetype
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise ApiError.unsupported_media_type()
    data = request.get_data()  # kept: a request retried on a new connection reads it again
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        raise ApiError.bad_request("body", "is not valid JSON") from None


def load(schema: Schema, data: Any) -> Any:
    """Validate ``data`` with ``schema``.

    :raises ApiError: 422 keyed by the JSON field names.
    """
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise ApiError.invalid(flatten(exc.messages)) from None


def flatten(messages: Any, key: str = "body") -> dict[str, list[str]]:
    """Turn marshmallow's nested messages into RealWorld's ``{field: [messages]}``.

    Envelopes and list indexes fold into the innermost field name, so
    ``{"article": {"tagList": {0: [...]}}}`` becomes ``{"tagList": [...]}``;
    an error about a whole object is reported under that object's key.
    """
    flat: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for name, inner in messages.items():
            inner_key = key if isinstance(name, int) or name == "_schema" else str(name)
            for k, found in flatten(inner, inner_key).items():
                bucket = flat.setdefault(k, [])
                bucket.extend(m for m in found if m not in bucket)
    else:
        items = messages if isinstance(messages, list) else [messages]
        flat.setdefault(key, []).extend(str(m) for m in items)
    return flat
