"""The WSGI environ keys through which the layers hand each other what one request needs.

A leaf module: every layer may import it, so the names of what travels in
the environ are written once, with who sets each and who reads it.
"""

from __future__ import annotations

#: The request id: set by the request log (from a sane ``X-Request-ID``, else new), read by the error log.
REQUEST_ID = "conduit.request_id"
#: The authenticated user's id: set by the dispatcher, read back for the request's log line.
USER_ID = "conduit.user_id"
#: What the request's token says (or the 401 it earns): decoded once, by whichever layer asks first.
TOKEN_CLAIMS = "conduit.token_claims"
#: The request's route and URL values (or the error it earns): matched once by the router, read by every layer.
ROUTE = "conduit.route"
#: Set by the rate limiter on a request whose well-signed token the dispatcher has yet to check; the
#: dispatcher calls it once with the authenticated user's id, or None when the token fails (then the
#: request counts against its address, never the account the token names).
RATE_CHARGE = "conduit.rate_charge"
#: Between the response cache and the dispatcher: the cached anonymous answer for a signed-in reader
#: (bytes); "hand back what you answer"; what it answered (a ``ConditionalRead`` for an anonymous
#: reader, the personal bytes otherwise); after a committed write, the surrogate keys it changed;
#: and, for a write, the function to call with those keys before it commits (false: it must not commit).
SHARED_ANSWER = "conduit.shared_answer"
SHARED_WANTED = "conduit.shared_wanted"
SHARED_STORE = "conduit.shared_store"
CHANGED = "conduit.changed"
FORGET_FIRST = "conduit.forget_first"
#: What the response cache did with a shared read: ``hit`` or ``miss``; set by the cache, read by
#: the request log for the metrics (absent: a request the cache did not look up).
CACHE_OUTCOME = "conduit.cache_outcome"
#: Set on the requests a new worker sends itself to warm up (``service.warmup``): logged, not counted
#: in the metrics (no client sent them).
WARMUP = "conduit.warmup"
#: Set on a request ``/metrics`` answered with the metrics (not counted in them either).
SCRAPE = "conduit.scrape"
