"""gunicorn settings for production: ``gunicorn -c python:service.gunicorn_conf wsgi:application``.

Each value comes from its ``CONDUIT_*`` variable as ``service.config.Settings``
declares it (or gunicorn's own command-line flags). The app is *not* preloaded: every worker builds its own
engine and connection pool after the fork, so no connection is ever shared
between processes.
"""

from __future__ import annotations

import multiprocessing

from service.config import Settings

_read = Settings.read

#: Where to listen.
bind = _read("bind")
#: Sync workers: one request at a time each; (2 x cores) + 1 keeps CPUs busy while others wait on I/O.
worker_class = "sync"
workers = _read("workers") or multiprocessing.cpu_count() * 2 + 1
#: A worker silent for this long is killed and replaced (a stuck request must not hold it forever).
timeout = _read("worker_timeout")
graceful_timeout = _read("graceful_timeout")
keepalive = 5
#: Recycle workers now and then (bounded memory growth), with jitter so they do not all restart together.
max_requests = _read("max_requests")
max_requests_jitter = _read("max_requests_jitter")
#: Which proxies may set X-Forwarded-* (gunicorn's own check; the app trusts nothing by default).
forwarded_allow_ips = _read("forwarded_allow_ips")
#: Never preload: pools must be created after fork.
preload_app = False
#: The service writes its own request log line (service.access); gunicorn's access log would duplicate it.
accesslog = None
errorlog = "-"
loglevel = _read("log_level").lower()
#: Bounded request line and headers (gunicorn's defaults, stated).
limit_request_line = 4094
limit_request_fields = 100
