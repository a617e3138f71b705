"""The dispatcher: one request's lifecycle, decided once.

Match the URL, begin a write's transaction, authenticate per the route's
policy, and run the route's step (``operations``: load → view → dump, inside
the wrappers its declaration asks for); then commit through the request's
unit of work, the one transaction boundary. A signed-in reader's shared hit
(the lookup the middleware hands in) is personalised instead: one statement
checks the token and reads the viewer's flags. Any error rolls back once and
renders as the RealWorld error body; the session is closed after the response
has been sent.

Collaborators come from ``create_app``: the database, the shared reads, the
limiter (which counts a signed-in request once its account is read), the
metrics and what views declare they use (``Route.uses``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from marshmallow import Schema
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.wsgi import ClosingIterator

from service import auth, environ_keys, operations, queries
from service.conditional_read import ConditionalRead
from service.config import Settings
from service.db import READ_ONLY_SQL_TRANSACTION, Database, describe_error
from service.errors import ApiError
from service.limiter import Limiter
from service.metrics import NO_METRICS, Metrics
from service.models import User
from service.operations import Answer
from service.request import ApiRequest
from service.router import AuthPolicy, Route, Router
from service.shared_reads import shown
from service.shared_reads.reads import SharedReads
from service.shared_reads.shown import SharedAnswer

logger = logging.getLogger(__name__)

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: How many more times a write PostgreSQL chose as a deadlock's victim is run (``Dispatcher._run_to_commit``).
DEADLOCK_RETRIES = 3


class Dispatcher:
    """The WSGI application proper: URL map → route → step, one transaction per request.

    :param shared: the shared reads (None: nothing is shared).
    :param limiter: counts signed-in requests once their account is read (None: no rate limits).
    :param collaborators: what views get by name when their route ``uses`` it.
    """

    def __init__(
        self,
        router: Router,
        settings: Settings,
        database: Database,
        *,
        shared: SharedReads | None = None,
        limiter: Limiter | None = None,
        metrics: Metrics = NO_METRICS,
        collaborators: Mapping[str, Any] | None = None,
    ) -> None:
        self.router = router
        self.settings = settings
        self.database = database
        self.shared = shared
        self.limiter = limiter
        self.metrics = metrics
        self._watchers = (shared,) if shared is not None else ()
        # Schemas are stateless once built, and every route's step is composed once.
        schemas: dict[type[Schema], Schema] = {}
        for route in router.routes.values():
            for cls in (route.body, route.query, route.reply):
                if cls is not None:
                    schemas.setdefault(cls, cls())
        routes = router.routes
        found = dict(collaborators or {})
        self.steps = {name: operations.for_route(r, routes, schemas, shared, found) for name, r in routes.items()}

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        safe = environ.get("REQUEST_METHOD", "GET") in _SAFE_METHODS
        request = ApiRequest(environ, self.settings, self.database, safe=safe, watchers=self._watchers)
        request.pending_charge = self.limiter.pending(environ) if self.limiter is not None else None
        try:
            answer = self.dispatch(request)
        except BaseException:
            request.close()
            raise
        pending = request.pending_charge
        if pending is not None and pending.headers:
            start_response = _adding(start_response, pending.headers)
        return ClosingIterator(answer(environ, start_response), request.close)  # closed once sent

    def dispatch(self, request: ApiRequest) -> Answer:
        """Run one request to an answer; never raises for a client's error."""
        try:
            return self._run_to_commit(request)
        except Exception as exc:
            request.work.rollback()
            return self._refusal(request, exc).get_response()
        finally:
            if request.pending_charge is not None:
                request.pending_charge.settle()  # answered before the token was checked: the address's

    def _run(self, request: ApiRequest) -> Answer:
        route, values = self.router.match(request.environ)
        lookup = request.environ.get(environ_keys.SHARED_LOOKUP)
        if lookup is not None and lookup.answer is not None:
            return self._personalize(request, route, lookup.answer)
        step = self.steps[route.endpoint]
        if not request.safe:
            request.work.begin(**step.begin_options(request))
        request.user = self._authenticate(request, route.auth)
        return step(request, values)

    def _run_to_commit(self, request: ApiRequest) -> Answer:
        """Run the request and commit a write; run it again where that is safe and likely to succeed.

        - **A dead pooled connection**, found before the commit, or one on a read-only server (a
          standby after a failover: ``db._on_a_standby_is_disconnected``) at any statement: once more
          on a fresh one. Pooled connections are not pinged before use (a round trip per request);
          one found dead (the database restarted) raised before anything was committed, and a standby
          wrote nothing, so running again is safe for writes too; the pool has already discarded its
          other connections from before the loss. (One lost *during* the commit is not retried: the
          write may have been committed.)
        - **A deadlock's victim** (PostgreSQL's 40P01, at any statement or the commit): up to
          :data:`DEADLOCK_RETRIES` more times. PostgreSQL aborted the transaction, so nothing of it
          was committed; two writers that lock kept totals in opposite orders (a publish takes its
          author's row and then its tags', a delete's cascade its tags' and then its author's) are
          the normal case under concurrency, and the retry, once the other has committed, succeeds.
        """
        for attempt in range(DEADLOCK_RETRIES + 1):
            try:
                answer = self._run(request)
            except DBAPIError as exc:
                if exc.connection_invalidated and attempt == 0:
                    logger.info(
                        "database connection lost on %s %s; retrying on a new one", request.method, request.path
                    )
                elif not (_deadlocked(exc) and attempt < DEADLOCK_RETRIES):
                    raise
                self._start_over(request, exc)
                continue
            if request.safe:
                return answer
            try:
                request.work.commit()
            except DBAPIError as exc:
                # Only what surely committed nothing: a deadlock's victim, or a write a standby refused.
                if not ((_deadlocked(exc) or _on_a_standby(exc)) and attempt < DEADLOCK_RETRIES):
                    raise
                self._start_over(request, exc)
                continue
            return answer
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _start_over(self, request: ApiRequest, exc: DBAPIError) -> None:
        """Roll back what the attempt did; a connection found dead is released for a fresh one."""
        request.work.rollback()
        if exc.connection_invalidated:
            request.close_db()
            self.metrics.retried("read_only" if _on_a_standby(exc) else "disconnect")
        else:
            self.metrics.retried("deadlock")
            logger.info("deadlock on %s %s; running it again", request.method, request.path)

    def _refusal(self, request: ApiRequest, exc: Exception) -> ApiError:
        """The error a failed request is answered with, counted for the operator where it matters."""
        if isinstance(exc, ApiError):
            if exc.status == 503:
                self.metrics.unavailable(next(iter(exc.messages), "unknown"))
            elif exc.status == 401 and "credentials" in exc.messages:  # only a login checks credentials
                self.metrics.failed_login()
            return exc
        if isinstance(exc, HTTPException):
            return _from_http(exc)
        if isinstance(exc, OperationalError | PoolTimeout):
            # Operational errors are the transient ones (connection lost or
            # refused, lock timeout, serialization failure): the client may retry.
            logger.error("database unavailable on %s %s: %s", request.method, request.path, describe_error(exc))
            if isinstance(exc, PoolTimeout):
                self.metrics.pool_timeout()
            self.metrics.unavailable("database")
            return ApiError.unavailable("database")
        logger.exception(
            "unhandled error on %s %s (request %s)",
            request.method,
            request.path,
            request.environ.get(environ_keys.REQUEST_ID, "-"),
            exc_info=exc,
        )
        return ApiError.internal()

    def _personalize(self, request: ApiRequest, route: Route, shared: SharedAnswer) -> ConditionalRead:
        """Answer a signed-in read from the shared (anonymous) answer the cache holds.

        One statement reads the viewer's row (the token's stamp is checked
        against it) together with which of the answer's articles they favorited
        and which of its authors they follow, so the flags are as fresh as the
        database whatever the cache holds.

        :raises ApiError: 401 for a token that no longer speaks for its account.
        """
        claims = auth.request_claims(request.environ, self.settings.secret_key) if route.auth != "none" else None
        if claims is None:
            return ConditionalRead(shared.body, shared.etag, private=True)
        places = shared.places()
        flags = queries.viewer_flags(request.reads, claims.user_id, {f: shown.names(places, f) for f in shown.FLAGS})
        if flags is None or not claims.still_valid_for(flags.token_stamp, flags.created_at, flags.kept_token):
            self._charge(request, None)
            raise ApiError.unauthorized("is invalid")
        self._charge(request, claims.user_id)
        request.environ[environ_keys.USER_ID] = claims.user_id  # for the request log line
        return ConditionalRead(shown.for_viewer(shared.body, places, flags.flags), private=True)

    def _authenticate(self, request: ApiRequest, policy: AuthPolicy) -> User | None:
        if policy == "none":
            return None
        claims = auth.request_claims(request.environ, self.settings.secret_key)
        if claims is None:
            if policy == "required":
                raise ApiError.unauthorized("is missing")
            return None
        # The row is read anyway, so checking the stamp and the account's age costs no statement.
        user = queries.user_by_id(request.db, claims.user_id)
        if user is None or not claims.still_valid_for(user.token_stamp, user.created_at, user.kept_token):
            self._charge(request, None)
            raise ApiError.unauthorized("is invalid")
        self._charge(request, user.id)
        request.environ[environ_keys.USER_ID] = user.id  # for the request log line
        request.claims = claims
        if not request.safe:
            stamp = user.token_stamp
            request.work.after_commit(lambda _: self._count_revocation(user, stamp))
        return user

    def _count_revocation(self, user: User, stamp_seen: str) -> None:
        """After a write's commit: a new token stamp on the caller's account voids every earlier token."""
        if user.token_stamp != stamp_seen:
            self.metrics.tokens_revoked()

    @staticmethod
    def _charge(request: ApiRequest, user_id: int | None) -> None:
        """Count the request against its user (or, None, its address) if the limiter left it to us.

        :raises ApiError: 429 when that is over a limit.
        """
        if request.pending_charge is not None:
            request.pending_charge.charge(user_id)


def _on_a_standby(exc: DBAPIError) -> bool:
    """Whether the write reached a read-only server (a standby after a failover; ``db.READ_ONLY_SQL_TRANSACTION``)."""
    return getattr(exc.orig, "sqlstate", None) == READ_ONLY_SQL_TRANSACTION


def _deadlocked(exc: DBAPIError) -> bool:
    """Whether PostgreSQL aborted the transaction to break a deadlock (SQLSTATE 40P01)."""
    return getattr(exc.orig, "sqlstate", None) == "40P01"


def _adding(start_response: Any, headers: list[tuple[str, str]]) -> Any:
    """``start_response`` with ``headers`` added to the answer's."""

    def start_with_headers(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        return start_response(status, [*response_headers, *headers], exc_info)

    return start_with_headers


def _from_http(exc: HTTPException) -> ApiError:
    headers: dict[str, str] = {}
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        # HEAD is answered wherever GET is, but only the documented methods are advertised.
        headers["Allow"] = ", ".join(sorted(set(exc.valid_methods) - {"HEAD"}))
    return ApiError.from_http(exc.code or 500, exc.description, headers)
