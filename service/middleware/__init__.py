"""WSGI middleware: small classes stacked by ``service.app.create_app``."""

#: After a shared storage fails (the response cache, the rate-limit counters), the layer using it
#: leaves it alone for this many seconds: one timeout per worker, not one per request.
BACKOFF_SECONDS = 2.0
