"""gunicorn settings for production: ``gunicorn -c python:service.gunicorn_conf wsgi:application``.

Each value can be overridden by a ``CONDUIT_*`` variable (or gunicorn's own
command-line flags). The app is *not* preloaded: every worker builds its own
engine and connection pool after the fork, so no connection is ever shared
between processes.
"""

from __future__ import annotations

import multiprocessing
import os

_env = os.environ.get

#: Where to listen.
bind = _env("CONDUIT_BIND", "127.0.0.1:8000")
#: Sync workers: one request at a time each; (2 x cores) + 1 keeps CPUs busy while others wait on I/O.
worker_class = "sync"
workers = int(_env("CONDUIT_WORKERS", str(multiprocessing.cpu_count() * 2 + 1)))
#: A worker silent for this long is killed and replaced (a stuck request must not hold it forever).
timeout = int(_env("CONDUIT_WORKER_TIMEOUT", "30"))
graceful_timeout = int(_env("CONDUIT_GRACEFUL_TIMEOUT", "30"))
keepalive = 5
#: Recycle workers now and then (bounded memory growth), with jitter so they do not all restart together.
max_requests = int(_env("CONDUIT_MAX_REQUESTS", "2000"))
max_requests_jitter = int(_env("CONDUIT_MAX_REQUESTS_JITTER", "200"))
#: Which proxies may set X-Forwarded-* (gunicorn's own check; the app trusts nothing by default).
forwarded_allow_ips = _env("CONDUIT_FORWARDED_ALLOW_IPS", "127.0.0.1")
#: Never preload: pools must be created after fork.
preload_app = False
#: The service writes its own request log line (service.access); gunicorn's access log would duplicate it.
accesslog = None
errorlog = "-"
loglevel = _env("CONDUIT_LOG_LEVEL", "info").lower()
#: Bounded request line and headers (gunicorn's defaults, stated).
limit_request_line = 4094
limit_request_fields = 100
