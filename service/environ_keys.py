"""The WSGI environ keys through which the layers hand each other what one request needs.

A leaf module: every layer may import it, so the names of what travels in the
environ are written once, with who sets each and who reads it. Each holds
data, never a callable, and flows one way: from the layer that sets it to the
layers it wraps (inwards) or to those that wrap it (outwards, read once the
answer is made). Collaborators (the shared reads, the limiter, the database)
are handed to the layers by ``create_app`` instead.
"""

from __future__ import annotations

#: Inwards. The request id: set by the request log (from a sane ``X-Request-ID``, else new), read by the error log.
REQUEST_ID = "conduit.request_id"
#: Inwards. The request's route and URL values (or the error it earns): matched once by the router, by
#: whichever layer asks first (``Router.match``), read by the layers within and by the request log.
ROUTE = "conduit.route"
#: Inwards. What the request's token says (or the 401 it earns): decoded once (``auth.request_claims``),
#: by whichever layer asks first (the limiter, else the dispatcher).
TOKEN_CLAIMS = "conduit.token_claims"
#: Inwards. The shared-reads lookup of a read the middleware did not answer (``shared_reads.reads.Lookup``):
#: the entry a signed-in reader's answer is made from, or the miss the dispatcher keeps its answer for.
SHARED_LOOKUP = "conduit.shared_lookup"
#: Outwards. What the lookup found, ``hit`` or ``miss``, for the request log's metrics (absent: not looked up).
CACHE_OUTCOME = "conduit.cache_outcome"
#: Outwards. The authenticated user's id: set by the dispatcher, read for the request's log line.
USER_ID = "conduit.user_id"
#: Inwards. Set on a request no client sent (a new worker's warm-up, ``service.warmup``) or that reads the
#: metrics (``/metrics``): logged, not counted in the metrics.
UNCOUNTED = "conduit.uncounted"
