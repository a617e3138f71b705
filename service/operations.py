"""Each route's behaviour, composed once from its declaration in the route table.

Every route is an :class:`Operation`: load the query and body with its
schemas, call its view, dump the result with its reply schema (a shared read
is kept for every reader on the way). A route that declares more gets a
wrapper around that, built here when the dispatcher starts, never decided per
request:

- ``current`` (a conditional write): :class:`Preconditions` compares
  ``If-Match`` and ``If-None-Match`` with the ETag the current read gives,
  and runs the write at REPEATABLE READ on PostgreSQL so that a concurrent
  writer loses with 412;
- a signed-in write (``Route.idempotent``): :class:`Idempotent` claims its
  ``Idempotency-Key`` in the write's transaction, replays the answer a retry's
  first attempt got, and keeps this one's answer before the commit.

The dispatcher begins the transaction with the options a step asks for
(:meth:`Step.begin_options`), authenticates, and calls the step.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import Any, Protocol

from marshmallow import Schema
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from werkzeug.http import parse_etags
from werkzeug.wrappers import Response

from service import environ_keys
from service.conditional_read import ConditionalRead
from service.db import WRITE_INTENT
from service.errors import ApiError
from service.json_bodies import encode_json, json_bytes_response
from service.ops import idempotency
from service.request import ApiRequest, load, read_json
from service.router import Route
from service.shared_reads import surrogates
from service.shared_reads.reads import SharedReads

logger = logging.getLogger(__name__)

#: What a step answers: a WSGI application (a read's ``ConditionalRead``, a write's ``Response``).
Answer = Response | ConditionalRead


class Step(Protocol):
    """A route's behaviour once the request is authenticated."""

    def __call__(self, request: ApiRequest, values: Mapping[str, Any]) -> Answer: ...

    def begin_options(self, request: ApiRequest) -> dict[str, Any]:
        """The execution options a write's transaction begins with."""
        ...


class Operation:
    """load → view → dump, for one route.

    :param schemas: one instance per schema class (stateless once built), shared by every route.
    :param shared: the shared reads, for a route that declares ``cache=``.
    :param collaborators: what a view that names them gets as keyword arguments (``Route.uses``).
    """

    def __init__(
        self,
        route: Route,
        schemas: Mapping[type[Schema], Schema],
        shared: SharedReads | None,
        collaborators: Mapping[str, Any],
    ) -> None:
        self.route = route
        self._query = schemas[route.query] if route.query is not None else None
        self._body = schemas[route.body] if route.body is not None else None
        self._reply = schemas[route.reply] if route.reply is not None else None
        # What a shared read depends on (``Route.cache``), when its answer is kept for every reader.
        self._depends_on = route.cache if shared is not None and route.status == 200 else None
        self._shared = shared
        self._collaborators: dict[str, Any] = {name: collaborators[name] for name in route.uses}

    def __call__(self, request: ApiRequest, values: Mapping[str, Any]) -> Answer:
        kwargs: dict[str, Any] = {**values, **self._collaborators}
        if self._query is not None:
            kwargs["query"] = load(self._query, request.args)
        if self._body is not None:
            kwargs["body"] = load(self._body, read_json(request))
        result = self.route.view(request, **kwargs)
        if not request.safe:
            request.work.before_commit(self._declared)
        return self.dump(request, values, result)

    def dump(self, request: ApiRequest, values: Mapping[str, Any], result: Any) -> Answer:
        """The answer for a view's result; dumped before the commit, so committing cannot change what is sent."""
        if self._reply is None:
            empty = Response(status=self.route.status)
            del empty.headers["Content-Type"]  # a 204 has no content, so no content type
            return empty
        data = self._reply.dump(result)
        if self.route.method != "GET" or self.route.status != 200:
            return json_bytes_response(encode_json(data), self.route.status)
        lookup = request.environ.get(environ_keys.SHARED_LOOKUP)
        if self._shared is not None and self._depends_on is not None and lookup is not None:
            body = self._shared.keep(lookup, self._depends_on(values, lookup.query), data, self.route.template)
        else:
            body = encode_json(data)
        return ConditionalRead(body, private=bool(request.environ.get("HTTP_AUTHORIZATION")))

    def begin_options(self, request: ApiRequest) -> dict[str, Any]:
        # SQLite: take the write lock up front (BEGIN IMMEDIATE) so that concurrent
        # writers queue instead of failing mid-transaction.
        return {WRITE_INTENT: True}

    def _declared(self, changed: frozenset[str]) -> None:
        """Log a key of a kind the route does not declare in ``forgets``: the table must say what a write changes.

        The key is forgotten all the same.
        """
        undeclared = sorted(key for key in changed if surrogates.kind(key) not in self.route.forgets)
        if undeclared:
            logger.error("%s %s changed %s, which its route does not declare", *self._name(), undeclared)

    def _name(self) -> tuple[str, str]:
        return self.route.method, self.route.template


class Preconditions:
    """A conditional write (``Route.current``): ``If-Match`` must name, ``If-None-Match`` must not name, the
    version the current read gives.

    RFC 9110 13.1.1: a stale ``If-Match`` gets 412, so two people editing one
    article cannot silently overwrite each other; ``If-None-Match: *`` (or the
    current ETag) on a write to a resource that exists gets 412 too (13.1.2).
    Both only once the write would otherwise succeed (13.2.1), so a 404, 403
    or 422 answers first. On PostgreSQL the write runs at REPEATABLE READ, so
    a writer that lost the race to a concurrent one fails (40001) instead of
    overwriting, and is answered 412 as well.
    """

    def __init__(self, inner: Step, current: Operation) -> None:
        self.inner = inner
        self.current = current

    def __call__(self, request: ApiRequest, values: Mapping[str, Any]) -> Answer:
        if_match, if_none_match = _header(request, "HTTP_IF_MATCH"), _header(request, "HTTP_IF_NONE_MATCH")
        if not if_match and not if_none_match:
            return self.inner(request, values)
        read = self.current.dump(request, values, self.current.route.view(request, **values))
        assert isinstance(read, ConditionalRead)
        try:
            # The write first, its conditions after (both before the commit); a 412 rolls the write back.
            answer = self.inner(request, values)
            if if_match and not parse_etags(if_match).contains(read.etag):  # a strong comparison (13.1.1)
                raise ApiError.precondition_failed()
            if if_none_match and parse_etags(if_none_match).contains_weak(read.etag):  # a weak one (13.1.2)
                raise ApiError.precondition_failed("If-None-Match", "matches the current version")
            request.db.flush()  # the write's statements run here, so a lost race is seen here
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) == "40001":  # a concurrent write made the version stale
                if if_match:
                    raise ApiError.precondition_failed() from None
                raise ApiError.precondition_failed("If-None-Match", "was written meanwhile") from None
            raise
        return answer

    def begin_options(self, request: ApiRequest) -> dict[str, Any]:
        options = self.inner.begin_options(request)
        conditional = _header(request, "HTTP_IF_MATCH") or _header(request, "HTTP_IF_NONE_MATCH")
        if conditional and _on_postgresql_engine(request):
            options["isolation_level"] = "REPEATABLE READ"
        return options


class Idempotent:
    """A signed-in write sent with an ``Idempotency-Key`` is applied once (``ops.idempotency``)."""

    def __init__(self, inner: Step) -> None:
        self.inner = inner

    def __call__(self, request: ApiRequest, values: Mapping[str, Any]) -> Answer:
        key = request.environ.get(idempotency.ENVIRON_KEY)
        if key is None or request.user is None:
            return self.inner(request, values)
        user_id = request.user.id
        replay = idempotency.claim(request.db, user_id, key, _fingerprint(request))
        if replay is not None:
            return _replayed(replay, request)
        answer = self.inner(request, values)
        assert isinstance(answer, Response)  # a write's answer
        status, body = answer.status_code, answer.get_data()
        for token in request.issued_tokens:  # no token at rest: a replay is given a fresh one (``_replayed``)
            body = body.replace(token.encode(), b"")
        request.work.before_commit(lambda _: idempotency.answered(request.db, user_id, key, status, body))
        return answer

    def begin_options(self, request: ApiRequest) -> dict[str, Any]:
        return self.inner.begin_options(request)


def for_route(
    route: Route,
    routes: Mapping[str, Route],
    schemas: Mapping[type[Schema], Schema],
    shared: SharedReads | None,
    collaborators: Mapping[str, Any],
) -> Step:
    """The route's operation, with the wrappers its declaration asks for."""
    step: Step = Operation(route, schemas, shared, collaborators)
    if route.current is not None:
        step = Preconditions(step, Operation(routes[route.current], schemas, None, collaborators))
    if route.idempotent:
        step = Idempotent(step)
    return step


def _header(request: ApiRequest, name: str) -> str:
    """A condition header of the request; an empty field names nothing: no condition."""
    return str(request.environ.get(name, "")).strip()


def _on_postgresql_engine(request: ApiRequest) -> bool:
    """Whether the request's transaction is a fresh one on PostgreSQL (a session bound to a connection
    already in a transaction, as in tests, keeps that transaction's isolation)."""
    bind = request.db.get_bind()
    return isinstance(bind, Engine) and bind.dialect.name == "postgresql"


#: Where a kept answer's token was (``Idempotent``): JSON as ``encode_json`` writes it; no real token is empty.
_TOKEN_TAKEN_OUT = b'"token":""'


def _replayed(replay: idempotency.Replay, request: ApiRequest) -> Response:
    """The answer a write with the same key got, marked as a replay; a token it carried, issued afresh."""
    if replay.body:
        body = replay.body
        if _TOKEN_TAKEN_OUT in body:
            token = request.sign_in(request.authenticated_user).token
            body = body.replace(_TOKEN_TAKEN_OUT, b'"token":"' + token.encode() + b'"')
        response = json_bytes_response(body, replay.status)
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
