"""Routes and the router: what each operation declares, and which one a request is for.

``Route`` is the record the route table (``service.route_table``) is made of: the
dispatcher loads, authenticates and dumps with it, the OpenAPI document is
generated from it, and the middleware read its edge declarations (cache
policy, rate-limit scopes) through ``Router``, which matches a request's URL
once and keeps the match in the environ for every layer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

from marshmallow import Schema
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing import Map, MapAdapter, Rule, Submount

from service import environ_keys
from service.errors import ApiError
from service.shared_reads import surrogates

AuthPolicy = Literal["required", "optional", "none"]
#: Rate-limit scopes: ``all`` (every request, per client), ``login`` (per address and per
#: account email), ``register`` (per address), ``writes`` (per signed-in user).
LimitScope = Literal["all", "login", "register", "writes"]
View = Callable[..., Any]
#: What a shared read depends on, from its URL values and query (first value of each name):
#: the surrogate keys of ``shared_reads.surrogates`` that its URL alone tells.
DependsOn = Callable[[Mapping[str, Any], Mapping[str, str]], Iterable[str]]
#: How many URLs' matches a router remembers (per process), and how many bytes of
#: paths, before it starts over: a flood of distinct long paths costs at most this.
_RECENT_MATCHES = 2048
_RECENT_BYTES = 512 * 1024
#: A werkzeug URL variable, ``<slug>`` or ``<int:id>``: its name is the second group.
_PARAM = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")


@dataclass(frozen=True)
class Route:
    """One API operation: everything the dispatcher, the middleware and the docs need to know.

    :param auth: ``required`` (401 without a token), ``optional`` (the viewer
        personalises the answer; a bad token is still 401) or ``none`` (the
        header is not looked at, so a stale token never blocks a login).
    :param body: schema of the JSON body; the view gets ``body=``.
    :param query: schema of the query string; the view gets ``query=``.
    :param reply: schema of the response body; None for an empty 204.
    :param mount: URL prefix; the API lives under ``/api``, health checks at the root.
    :param errors: statuses of the contract's own errors (403, 404, 409, 503) this
        operation can answer; the rest follow from the declaration (401 from
        ``auth``, 422/400/415/413 from ``body``/``query``, 429 from ``limit_scopes``)
        and are documented without it.
    :param cache: the answer, as an anonymous reader gets it, may be kept by the
        response cache and served to every reader (signed-in readers get their
        ``favorited``/``following`` flags added per request). It is the surrogate
        keys the URL tells the answer depends on; the keys of the articles and
        profiles in the answer are added to them (``shared_reads.shown``).
    :param forgets: the kinds of surrogate key a successful write may change
        (``surrogates.Kind``); its ops name the keys themselves. Empty: nothing
        any shared answer shows (a login, a follow).
    :param current: for a write, the endpoint of the read that shows the
        resource's current version: an ``If-Match`` on the write is compared
        with the ETag that read gives this caller, and a stale one gets 412
        (RFC 9110 13.1.1), so two people editing one article cannot silently
        overwrite each other.
    :param limit_scopes: the rate-limit scopes the request counts against; ``()`` for
        none (health checks).
    :param uses: the collaborators ``create_app`` hands the view as keyword
        arguments, by name (``storages``: the shared storages readiness reports on).
    :param tag: the OpenAPI tag, when not the one of the view's module.
    :param summary: one line for the API documentation.
    """

    method: str
    path: str
    view: View
    auth: AuthPolicy
    body: type[Schema] | None = None
    query: type[Schema] | None = None
    reply: type[Schema] | None = None
    status: int = 200
    mount: str = "/api"
    errors: tuple[int, ...] = ()
    cache: DependsOn | None = None
    forgets: tuple[surrogates.Kind, ...] = ()
    current: str | None = None
    limit_scopes: tuple[LimitScope, ...] = ("all",)
    uses: tuple[Literal["storages"], ...] = ()
    tag: str = ""
    summary: str = ""

    @property
    def variables(self) -> list[tuple[str, str]]:
        """The URL's variables as (converter, name): ``("int", "id")``, ``("", "slug")``."""
        return _PARAM.findall(self.path)

    @cached_property
    def template(self) -> str:
        """The URL as OpenAPI writes it, ``/api/articles/{slug}``: how the docs and the metrics name the route."""
        return self.mount + _PARAM.sub(r"{\2}", self.path)

    @cached_property
    def query_names(self) -> frozenset[str]:
        """The query parameters the route reads (its query schema's fields, by the names a URL gives them).

        Any other parameter changes nothing in the answer, so a shared read's key leaves it out: ``?utm=1``
        and ``?utm=2`` share one entry instead of each making another (issue 34).
        """
        if self.query is None:
            return frozenset()
        return frozenset(field.data_key or name for name, field in self.query().fields.items())

    @property
    def idempotent(self) -> bool:
        """Whether a retry with the same ``Idempotency-Key`` gets the first answer: every signed-in write."""
        return self.auth == "required" and self.method in ("POST", "PUT", "PATCH", "DELETE")

    @property
    def endpoint(self) -> str:
        """``"<resource>.<view>"``, e.g. ``"articles.get_article"``."""
        return f"{self.view.__module__.rsplit('.', 1)[-1]}.{self.view.__name__}"


class Router:
    """The route table bound to its werkzeug URL map.

    Every layer asks it which route a request is for (the middleware for
    whether it is shared and its rate-limit scopes, the dispatcher for
    everything else); the URL is matched once per request and the result kept
    in the environ.
    """

    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes = {route.endpoint: route for route in routes}
        mounts: dict[str, list[Rule]] = {}
        for r in self.routes.values():
            mounts.setdefault(r.mount, []).append(Rule(r.path, methods=[r.method], endpoint=r.endpoint))
        # A trailing slash is tolerated; slashes are never merged (an empty slug is no slug).
        rules = [Submount(mount, found) for mount, found in mounts.items()]
        self.url_map = Map(rules, strict_slashes=False, merge_slashes=False)
        # Bound once: the rules match on path and method alone (no host, no redirects),
        # so a request needs none of what binding to its environ would parse.
        self._adapter = self.url_map.bind("localhost")
        # The matches of recent URLs: popular ones repeat, and a match depends on path and method alone.
        self._recent: dict[tuple[str, str], tuple[Route, Mapping[str, Any]]] = {}
        self._recent_bytes = 0

    @property
    def methods(self) -> list[str]:
        """Every method some route answers, in the table's order."""
        return list(dict.fromkeys(route.method for route in self.routes.values()))

    def match(self, environ: dict[str, Any]) -> tuple[Route, Mapping[str, Any]]:
        """The request's route and URL values.

        :raises HTTPException: 404 for no route, 405 (with the resource's methods) for another method.
        :raises ApiError: 404 for a URL value holding a NUL (it must not reach SQL).
        """
        found = environ.get(environ_keys.ROUTE)
        if found is None:
            found = environ[environ_keys.ROUTE] = self._match(environ)
        if isinstance(found, Exception):
            raise found
        return found

    def route_for(self, environ: dict[str, Any]) -> Route | None:
        """The request's route; None when no route answers it."""
        try:
            return self.match(environ)[0]
        except (HTTPException, ApiError):
            return None

    def shares(self, environ: dict[str, Any]) -> frozenset[str] | None:
        """The query parameters a shared answer depends on (``Route.query_names``), when the request's answer
        may be shared by every reader (its route declares ``cache=``); None when it may not."""
        try:
            route = self.match(environ)[0]
        except (HTTPException, ApiError):
            return None
        return route.query_names if route.cache is not None else None

    def limit_scopes(self, environ: dict[str, Any]) -> tuple[LimitScope, ...]:
        """The rate-limit scopes the request counts against (``Route.limit_scopes``).

        A URL no route answers counts against the default limits (a scan is
        traffic too); OPTIONS requests (CORS preflights) are never counted.
        """
        if environ.get("REQUEST_METHOD") == "OPTIONS":
            return ()
        route = self.route_for(environ)
        return route.limit_scopes if route is not None else ("all",)

    def authenticates(self, environ: dict[str, Any]) -> bool:
        """Whether the request's route checks a token (``Route.auth`` other than ``none``)."""
        route = self.route_for(environ)
        return route is not None and route.auth != "none"

    def _match(self, environ: dict[str, Any]) -> tuple[Route, Mapping[str, Any]] | Exception:
        key = (environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET"))
        recent = self._recent.get(key)
        if recent is not None:
            return recent
        found = self._match_path(*key)
        if not isinstance(found, Exception):  # a raised exception keeps its traceback: never reuse one
            if len(self._recent) >= _RECENT_MATCHES or self._recent_bytes > _RECENT_BYTES:
                self._recent.clear()
                self._recent_bytes = 0
            self._recent[key] = found
            self._recent_bytes += 2 * len(key[0])  # the path, and the URL values cut from it
        return found

    def _match_path(self, path_info: str, method: str) -> tuple[Route, Mapping[str, Any]] | Exception:
        # PATH_INFO is the URL's bytes as latin-1 (PEP 3333); rules are text (werkzeug decodes the same way).
        path = path_info.encode("latin-1").decode(errors="replace")
        try:
            endpoint, values = self._adapter.match(path, method)
        except MethodNotAllowed as exc:
            return MethodNotAllowed(valid_methods=_resource_methods(self._adapter, path, exc.valid_methods or []))
        except HTTPException as exc:
            return exc
        if any("\x00" in str(value) for value in values.values()):
            return ApiError.not_found("resource")
        return self.routes[endpoint], values


def _resource_methods(adapter: MapAdapter, path: str, methods: Iterable[str]) -> list[str]:
    """The methods of the most specific resource at the URL.

    werkzeug lists every rule's methods for a URL, so ``/api/articles/feed``
    would advertise ``/api/articles/<slug>``'s PUT and DELETE too; the static
    rule (fewest converters) is the resource the client addressed.
    """
    rules: dict[str, int] = {}
    for method in methods:
        rule, _ = adapter.match(path, method, return_rule=True)
        rules[method] = len(rule.arguments)
    fewest = min(rules.values(), default=0)
    return sorted(method for method, arguments in rules.items() if arguments == fewest)
