"""Anonymous hits of the shared reads, answered before any other work; every other request passes through.

For a ``GET`` or ``HEAD`` of a route that declares ``cache=`` (``Router.shares``),
the URL is looked up once (``SharedReads.lookup``). An anonymous reader's hit
is answered here, as it is stored (ETag, 304, HEAD without a body). Anything
else goes on to the dispatcher with the lookup in the environ
(``environ_keys.SHARED_LOOKUP``, data only): a signed-in reader's hit is
personalised there, and a miss is kept there. Every looked-up answer says
``X-Cache: hit`` or ``miss``; the outcome is left for the metrics
(``environ_keys.CACHE_OUTCOME``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from service import environ_keys
from service.conditional_read import ConditionalRead
from service.shared_reads.reads import SharedReads


class SharedHitsMiddleware:
    """Answer anonymous hits from the shared reads; hand every other shared read's lookup inwards.

    :param shares: the query parameters a request's shared answer depends on; None if its route declares no
        ``cache=``.
    :param shared: the shared reads ``create_app`` built (the dispatcher holds the same one).
    """

    def __init__(
        self, app: Any, shares: Callable[[dict[str, Any]], frozenset[str] | None], shared: SharedReads
    ) -> None:
        self.app = app
        self.shares = shares
        self.shared = shared

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return self.app(environ, start_response)  # type: ignore[no-any-return]
        reads = self.shares(environ)
        if reads is None:
            return self.app(environ, start_response)  # type: ignore[no-any-return]
        lookup = self.shared.lookup(environ, reads)
        if lookup is None:  # the store is down, owed a bump, or off: answer without it
            return self.app(environ, start_response)  # type: ignore[no-any-return]
        outcome = environ[environ_keys.CACHE_OUTCOME] = "miss" if lookup.answer is None else "hit"

        def start_with_outcome(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, [*headers, ("X-Cache", outcome)], exc_info)

        if lookup.answer is not None and not environ.get("HTTP_AUTHORIZATION"):
            return ConditionalRead(lookup.answer.body, lookup.answer.etag)(environ, start_with_outcome)
        environ[environ_keys.SHARED_LOOKUP] = lookup
        return self.app(environ, start_with_outcome)  # type: ignore[no-any-return]
