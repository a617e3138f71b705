"""The HTTP edge: the request type, JSON in, and the dispatcher.

The request lifecycle is decided here, once: match the URL, authenticate per
the route's policy, claim a signed-in write's ``Idempotency-Key`` (or replay
the answer it already got), load the query and body with the route's schemas,
call the view, dump its result with the route's reply schema, tell a shared
cache what the write changed, then commit. Any error rolls back and renders as
the RealWorld error body; the session is closed after the response has been
sent.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from marshmallow import Schema, ValidationError
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.http import parse_etags
from werkzeug.wrappers import Request, Response
from werkzeug.wsgi import ClosingIterator

from service import auth, queries, surrogates
from service.answer import Answer
from service.config import RATE_CHARGE_KEY, REQUEST_ID_KEY, USER_ID_KEY, WRITE_INTENT, Settings
from service.errors import ApiError
from service.metrics import Metrics
from service.middleware import cache
from service.models import User
from service.ops import idempotency
from service.router import AuthPolicy, Route, Router
from service.wire import encode_json, json_bytes_response

logger = logging.getLogger(__name__)

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class SignedIn:
    """A user together with the token just issued for them: the wire's ``User``."""

    user: User
    token: str

    def __getattr__(self, name: str) -> Any:
        return getattr(self.user, name)


class ApiRequest(Request):
    """A request with its database session, settings and authenticated user."""

    def __init__(
        self,
        environ: dict[str, Any],
        settings: Settings,
        session_factory: sessionmaker[Session],
        read_engine: Engine | None = None,
    ) -> None:
        super().__init__(environ)
        self.settings = settings
        self.max_content_length = settings.max_body_bytes
        self._session_factory = session_factory
        self._read_engine = read_engine
        self.user: User | None = None
        self.claims: auth.Claims | None = None  # what the authenticated token says
        self.stamp_seen: str | None = None  # the account's token stamp when the request was authenticated

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

    @cached_property
    def db(self) -> Session:
        """This request's ORM session, opened on first use; a safe request's shares its read connection."""
        if self._read_engine is None:
            return self._session_factory()
        return self._session_factory(bind=self.reads)

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
        return SignedIn(user, token)

    def signed_in_as_asked(self) -> SignedIn:
        """The caller with the token the request carries.

        :raises ApiError: 401 if the request carries no token.
        """
        return SignedIn(self.authenticated_user, self.token or "")

    def close_db(self) -> None:
        """Release the session and the read connection, if opened; the next use opens others."""
        session = self.__dict__.pop("db", None)
        reads = self.__dict__.pop("reads", None)
        if session is not None:
            session.close()
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


class Dispatcher:
    """The WSGI application proper: URL map → route → view, one transaction per request."""

    def __init__(
        self,
        router: Router,
        settings: Settings,
        session_factory: sessionmaker[Session],
        *,
        read_engine: Engine | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.router = router
        self.metrics = metrics if metrics is not None else Metrics()
        self.settings = settings
        self.session_factory = session_factory
        self.read_engine = read_engine
        # Schemas are stateless once built; building them per request is wasted work.
        self._schemas: dict[type[Schema], Schema] = {}
        for route in router.routes.values():
            for cls in (route.body, route.query, route.reply):
                if cls is not None:
                    self._schemas.setdefault(cls, cls())

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        safe = environ.get("REQUEST_METHOD", "GET") in _SAFE_METHODS
        request = ApiRequest(environ, self.settings, self.session_factory, self.read_engine if safe else None)
        try:
            response = self.dispatch(request)
        except BaseException:
            request.close()
            raise
        return ClosingIterator(response(environ, start_response), request.close)

    def dispatch(self, request: ApiRequest) -> Response | Answer:
        """Run one request to a response; never raises for a client's error."""
        try:
            response = self._run_once_more_if_disconnected(request)
            if "db" in request.__dict__ and request.method not in _SAFE_METHODS:
                changed = self._changes(request)
                forget_first = request.environ.get(cache.FORGET_FIRST_KEY)
                if changed and forget_first is not None and not forget_first(changed):
                    raise ApiError.unavailable("cache")  # a shared cache other hosts read cannot be told
                revoked = request.user is not None and request.user.token_stamp != request.stamp_seen
                request.db.commit()  # a read has nothing to commit: closing the session releases it
                if changed:
                    request.environ[cache.CHANGED_KEY] = changed
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
            logger.error("database unavailable on %s %s: %s", request.method, request.path, _describe(exc))
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
                request.environ.get(REQUEST_ID_KEY, "-"),
            )
            return ApiError.internal().get_response()

    def _count_refusal(self, error: ApiError) -> None:
        """Report the refusals an operator watches: 503s by cause, and failed logins."""
        if error.status == 503:
            self.metrics.unavailable(next(iter(error.messages), "unknown"))
        elif error.status == 401 and "credentials" in error.messages:  # only a login checks credentials
            self.metrics.failed_login()

    def _run_once_more_if_disconnected(self, request: ApiRequest) -> Response | Answer:
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

    def _run(self, request: ApiRequest) -> Response | Answer:
        route, values = self.router.match(request.environ)
        shared = request.environ.get(cache.SHARED_ANSWER_KEY)
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
            answer = Answer(body, private=bool(request.environ.get("HTTP_AUTHORIZATION")))
            if request.environ.get(cache.SHARED_WANTED_KEY):
                # Handed back for the response cache: an anonymous answer as it is, a personal one as bytes.
                request.environ[cache.SHARED_STORE_KEY] = answer if request.user is None else body
            return answer
        return json_bytes_response(body, route.status)

    def _check_if_match(self, request: ApiRequest, route: Route, values: Mapping[str, Any], if_match: str) -> None:
        """Compare ``If-Match`` with the ETag the caller's read of the resource gives now.

        :raises ApiError: 412 when it names no current version; the read's own 404/403 as they come.
        """
        read = self.router.routes[str(route.current)]
        assert read.reply is not None
        current = Answer(encode_json(self._schemas[read.reply].dump(read.view(request, **values))))
        if not parse_etags(if_match).contains(current.etag):
            raise ApiError.precondition_failed()

    def _personalize(self, request: ApiRequest, route: Route, shared: bytes) -> Answer:
        """Answer a signed-in read from the shared (anonymous) answer the cache holds.

        One statement reads the viewer's row (the token's stamp is checked
        against it) together with which of the answer's articles they favorited
        and which of its authors they follow, so the flags are as fresh as the
        database whatever the cache holds.

        :raises ApiError: 401 for a token that no longer speaks for its account.
        """
        claims = auth.request_claims(request.environ, self.settings.secret_key) if route.auth != "none" else None
        if claims is None:
            return Answer(shared, private=True)

        def viewer_flags(slugs: list[str], usernames: list[str]) -> tuple[frozenset[str], frozenset[str]]:
            flags = queries.viewer_flags(request.reads, claims.user_id, slugs, usernames)
            if flags is None or not claims.still_valid_for(flags.token_stamp, flags.created_at, flags.kept_token):
                _count_against(request, None)
                raise ApiError.unauthorized("is invalid")
            _count_against(request, claims.user_id)
            return flags.favorited, flags.following

        answer = Answer(cache.personalize(shared, viewer_flags), private=True)
        request.environ[USER_ID_KEY] = claims.user_id  # for the request log line
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
        request.environ[USER_ID_KEY] = user.id  # for the request log line
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
    charge = request.environ.get(RATE_CHARGE_KEY)
    if charge is not None:
        charge(user_id)


def _from_http(exc: HTTPException) -> ApiError:
    headers: dict[str, str] = {}
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        # HEAD is answered wherever GET is, but only the documented methods are advertised.
        headers["Allow"] = ", ".join(sorted(set(exc.valid_methods) - {"HEAD"}))
    return ApiError.from_http(exc.code or 500, exc.description, headers)


def _describe(exc: Exception) -> str:
    """Class and first line of a driver error; never the SQL parameters (they hold user data)."""
    orig = getattr(exc, "orig", None) or exc
    first_line = str(orig).strip().splitlines()[0] if str(orig).strip() else ""
    return f"{type(orig).__name__}: {first_line}"
