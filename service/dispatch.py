"""The dispatcher: one request's lifecycle, decided once.

Match the URL, authenticate per the route's policy, claim a signed-in write's
``Idempotency-Key`` (or replay the answer it already got), load the query and
body with the route's schemas, call the view, dump its result with the
route's reply schema, tell a shared cache what the write changed, then
commit: the one transaction boundary. Any error rolls back and renders as the
RealWorld error body; the session is closed after the response has been sent.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from marshmallow import Schema
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.http import parse_etags
from werkzeug.wrappers import Response
from werkzeug.wsgi import ClosingIterator

from service import auth, environ_keys, queries, surrogates
from service.conditional_read import ConditionalRead
from service.config import WRITE_INTENT, Settings
from service.db import Database, describe_error
from service.errors import ApiError
from service.json_bodies import encode_json, json_bytes_response
from service.metrics import NO_METRICS, Metrics
from service.middleware import cache
from service.models import User
from service.ops import idempotency
from service.ops.health import Storages
from service.request import ApiRequest, load, read_json
from service.router import AuthPolicy, Route, Router

logger = logging.getLogger(__name__)

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Dispatcher:
    """The WSGI application proper: URL map → route → view, one transaction per request."""

    def __init__(
        self,
        router: Router,
        settings: Settings,
        database: Database,
        *,
        storages: Storages | None = None,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self.router = router
        self.settings = settings
        self.database = database
        self.storages = storages if storages is not None else Storages()
        self.metrics = metrics
        # Schemas are stateless once built; building them per request is wasted work.
        self._schemas: dict[type[Schema], Schema] = {}
        for route in router.routes.values():
            for cls in (route.body, route.query, route.reply):
                if cls is not None:
                    self._schemas.setdefault(cls, cls())

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        safe = environ.get("REQUEST_METHOD", "GET") in _SAFE_METHODS
        request = ApiRequest(environ, self.settings, self.database, self.storages, safe=safe)
        try:
            response = self.dispatch(request)
        except BaseException:
            request.close()
            raise
        return ClosingIterator(response(environ, start_response), request.close)

    def dispatch(self, request: ApiRequest) -> Response | ConditionalRead:
        """Run one request to a response; never raises for a client's error."""
        try:
            response = self._run_once_more_if_disconnected(request)
            if "db" in request.__dict__ and request.method not in _SAFE_METHODS:
                changed = self._changes(request)
                forget_first = request.environ.get(environ_keys.FORGET_FIRST)
                if changed and forget_first is not None and not forget_first(changed):
                    raise ApiError.unavailable("cache")  # a shared cache other hosts read cannot be told
                revoked = request.user is not None and request.user.token_stamp != request.stamp_seen
                request.db.commit()  # a read has nothing to commit: closing the session releases it
                if changed:
                    request.environ[environ_keys.CHANGED] = changed
                if revoked:  # the write gave the caller's account a new stamp: every earlier token is void
                    self.metrics.tokens_revoked()
            return response
        except ApiError as error:
            self._rollback(request)
            self._count_refusal(error)
            return error.get_response()
        except HTTPException as exc:
            self._rollback(request)
            return _from_http(exc).get_response()
        except (OperationalError, PoolTimeout) as exc:
            # Operational errors are the transient ones (connection lost or
            # refused, lock timeout, serialization failure): the client may retry.
            self._rollback(request)
            if _if_match(request, None) and getattr(getattr(exc, "orig", None), "sqlstate", None) == "40001":
                # A conditional write lost to a concurrent one: its If-Match no longer names the current version.
                return ApiError.precondition_failed().get_response()
            logger.error("database unavailable on %s %s: %s", request.method, request.path, describe_error(exc))
            if isinstance(exc, PoolTimeout):
                self.metrics.pool_timeout()
            self.metrics.unavailable("database")
            return ApiError.unavailable("database").get_response()
        except Exception:
            self._rollback(request)
            logger.exception(
                "unhandled error on %s %s (request %s)",
                request.method,
                request.path,
                request.environ.get(environ_keys.REQUEST_ID, "-"),
            )
            return ApiError.internal().get_response()

    def _count_refusal(self, error: ApiError) -> None:
        """Report the refusals an operator watches: 503s by cause, and failed logins."""
        if error.status == 503:
            self.metrics.unavailable(next(iter(error.messages), "unknown"))
        elif error.status == 401 and "credentials" in error.messages:  # only a login checks credentials
            self.metrics.failed_login()

    def _run_once_more_if_disconnected(self, request: ApiRequest) -> Response | ConditionalRead:
        """Run the request; if its pooled connection turned out dead, run it again on a fresh one.

        Pooled connections are not pinged before use (a round trip per request).
        A connection found dead (the database restarted) raised before anything
        was committed, so running the request again is safe for writes too; the
        pool has already discarded its other connections from before the loss.
        """
        try:
            return self._run(request)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            logger.info("database connection lost on %s %s; retrying on a new one", request.method, request.path)
            self._rollback(request)
            request.close_db()
            return self._run(request)

    def _changes(self, request: ApiRequest) -> frozenset[str]:
        """The surrogate keys the write changed, for the response cache (``middleware.cache``).

        A key of a kind the route does not declare in ``forgets`` is still
        forgotten, and logged: the route table must say what each write changes.
        """
        changed = surrogates.recorded(request.db.info)
        if not changed:
            return changed
        route = self.router.route_for(request.environ)
        undeclared = sorted(key for key in changed if route is None or surrogates.kind(key) not in route.forgets)
        if undeclared:
            logger.error("%s %s changed %s, which its route does not declare", request.method, request.path, undeclared)
        return changed

    def _run(self, request: ApiRequest) -> Response | ConditionalRead:
        route, values = self.router.match(request.environ)
        shared = request.environ.get(environ_keys.SHARED_ANSWER)
        if shared is not None and route.method == "GET" and route.reply is not None:
            return self._personalize(request, route, shared)
        if_match = _if_match(request, route)
        if request.method not in _SAFE_METHODS:
            # SQLite: take the write lock up front (BEGIN IMMEDIATE) so that
            # concurrent writers queue instead of failing mid-transaction.
            options: dict[str, Any] = {WRITE_INTENT: True}
            if if_match and _on_postgresql_engine(request):
                # A conditional write must not pass on a version another transaction is replacing:
                # at REPEATABLE READ the later writer fails (answered 412) instead of overwriting.
                options["isolation_level"] = "REPEATABLE READ"
            request.db.connection(execution_options=options)
        request.user = self._authenticate(request, route.auth)
        key = _idempotency_key(request)
        if key is not None:
            replay = idempotency.claim(request.db, key[0], key[1], _fingerprint(request))
            if replay is not None:
                return _replayed(replay)
        if if_match:
            self._check_if_match(request, route, values, if_match)
        kwargs: dict[str, Any] = dict(values)
        if route.query is not None:
            kwargs["query"] = load(self._schemas[route.query], request.args)
        if route.body is not None:
            kwargs["body"] = load(self._schemas[route.body], read_json(request))
        result = route.view(request, **kwargs)
        if route.reply is None:
            if key is not None:
                idempotency.answered(request.db, *key, route.status, b"")
            empty = Response(status=route.status)
            del empty.headers["Content-Type"]  # a 204 has no content, so no content type
            return empty
        # Dumped before the commit: committing must not be able to change what is sent.
        body = encode_json(self._schemas[route.reply].dump(result))
        if key is not None:
            idempotency.answered(request.db, *key, route.status, body)
        if route.method == "GET" and route.status == 200:
            answer = ConditionalRead(body, private=bool(request.environ.get("HTTP_AUTHORIZATION")))
            if request.environ.get(environ_keys.SHARED_WANTED):
                # Handed back for the response cache: an anonymous answer as it is, a personal one as bytes.
                request.environ[environ_keys.SHARED_STORE] = answer if request.user is None else body
            return answer
        return json_bytes_response(body, route.status)

    def _check_if_match(self, request: ApiRequest, route: Route, values: Mapping[str, Any], if_match: str) -> None:
        """Compare ``If-Match`` with the ETag the caller's read of the resource gives now.

        :raises ApiError: 412 when it names no current version; the read's own 404/403 as they come.
        """
        read = self.router.routes[str(route.current)]
        assert read.reply is not None
        current = ConditionalRead(encode_json(self._schemas[read.reply].dump(read.view(request, **values))))
        if not parse_etags(if_match).contains(current.etag):
            raise ApiError.precondition_failed()

    def _personalize(self, request: ApiRequest, route: Route, shared: bytes) -> ConditionalRead:
        """Answer a signed-in read from the shared (anonymous) answer the cache holds.

        One statement reads the viewer's row (the token's stamp is checked
        against it) together with which of the answer's articles they favorited
        and which of its authors they follow, so the flags are as fresh as the
        database whatever the cache holds.

        :raises ApiError: 401 for a token that no longer speaks for its account.
        """
        claims = auth.request_claims(request.environ, self.settings.secret_key) if route.auth != "none" else None
        if claims is None:
            return ConditionalRead(shared, private=True)

        def viewer_flags(slugs: list[str], usernames: list[str]) -> tuple[frozenset[str], frozenset[str]]:
            flags = queries.viewer_flags(request.reads, claims.user_id, slugs, usernames)
            if flags is None or not claims.still_valid_for(flags.token_stamp, flags.created_at, flags.kept_token):
                _count_against(request, None)
                raise ApiError.unauthorized("is invalid")
            _count_against(request, claims.user_id)
            return flags.favorited, flags.following

        answer = ConditionalRead(cache.personalize(shared, viewer_flags), private=True)
        request.environ[environ_keys.USER_ID] = claims.user_id  # for the request log line
        return answer

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
            _count_against(request, None)
            raise ApiError.unauthorized("is invalid")
        _count_against(request, user.id)
        request.environ[environ_keys.USER_ID] = user.id  # for the request log line
        request.claims = claims
        request.stamp_seen = user.token_stamp
        return user

    @staticmethod
    def _rollback(request: ApiRequest) -> None:
        if "db" in request.__dict__:
            surrogates.recorded(request.db.info)  # nothing was changed after all
            try:
                request.db.rollback()
            except Exception:  # the connection may already be gone; close() will discard it
                logger.warning("rollback failed", exc_info=True)


def _if_match(request: ApiRequest, route: Route | None) -> str:
    """The request's ``If-Match``, when it is a condition on this write (its route declares ``current``).

    With ``route=None``: the request's, whatever its route (it was checked before it reached the database).
    """
    if request.method in _SAFE_METHODS or (route is not None and route.current is None):
        return ""
    return str(request.environ.get("HTTP_IF_MATCH", "")).strip()  # an empty field names nothing: no condition


def _idempotency_key(request: ApiRequest) -> tuple[int, str] | None:
    """(user id, key) of a signed-in write sent with an ``Idempotency-Key`` (``ops.idempotency``)."""
    key = request.environ.get(idempotency.ENVIRON_KEY)
    if key is None or request.user is None or request.method in _SAFE_METHODS:
        return None
    return request.user.id, key


def _replayed(replay: idempotency.Replay) -> Response:
    """The answer a write with the same key got, marked as a replay."""
    if replay.body:
        response = json_bytes_response(replay.body, replay.status)
    else:
        response = Response(status=replay.status)
        del response.headers["Content-Type"]
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _fingerprint(request: ApiRequest) -> str:
    """What makes two writes the same one: method, path, query and body (SHA-256)."""
    digest = hashlib.sha256(f"{request.method} {request.path}?{request.query_string.decode('latin1')}\n".encode())
    digest.update(request.get_data())  # kept: the view reads the same bytes
    return digest.hexdigest()


def _on_postgresql_engine(request: ApiRequest) -> bool:
    """Whether the request's transaction is a fresh one on PostgreSQL (a session bound to a connection
    already in a transaction, as in tests, keeps that transaction's isolation)."""
    bind = request.db.get_bind()
    return isinstance(bind, Engine) and bind.dialect.name == "postgresql"


def _count_against(request: ApiRequest, user_id: int | None) -> None:
    """Tell the rate limiter whose request this is: the user's, or (None) its address's.

    :raises ApiError: 429 when that is over a limit.
    """
    charge = request.environ.get(environ_keys.RATE_CHARGE)
    if charge is not None:
        charge(user_id)


def _from_http(exc: HTTPException) -> ApiError:
    headers: dict[str, str] = {}
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        # HEAD is answered wherever GET is, but only the documented methods are advertised.
        headers["Allow"] = ", ".join(sorted(set(exc.valid_methods) - {"HEAD"}))
    return ApiError.from_http(exc.code or 500, exc.description, headers)
