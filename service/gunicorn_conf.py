"""gunicorn settings for production: ``gunicorn -c python:service.gunicorn_conf wsgi:application``.

Each value comes from its ``CONDUIT_*`` variable as ``service.config.Settings``
declares it (or gunicorn's own command-line flags). The app is *not* preloaded: every worker builds its own
engine and connection pool after the fork, so no connection is ever shared
between processes.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import time
from pathlib import Path
from typing import Any

# Imported once, here in the master, before any fork: a worker (at start, or replacing one that
# died or reached max_requests) then only builds the app from modules already in memory, instead of
# importing them again on a CPU the other workers are serving from. Nothing here connects to anything.
# So SIGHUP starts workers with the same code, never a mix: a new release is USR2 or a restart.
import service.app  # noqa: F401
from service.config import Settings
from service.db import MigrationsMissing, expected_head
from service.lifecycle import start_draining
from service.metrics import MULTIPROC_ENV, empty_folder
from service.warmup import warm

_read = Settings.read

#: Where the workers keep their counts when /metrics is on: set here, in the master, before any
#: worker starts, so every worker (and this process, which reads a dead worker's files) agrees.
_metrics_dir: Path | None = None
if _read("metrics_allow") or _read("metrics_token"):
    _metrics_dir = Path(_read("metrics_dir") or _read("instance_path") / "metrics").resolve()
    os.environ["CONDUIT_METRICS_DIR"] = os.environ[MULTIPROC_ENV] = str(_metrics_dir)


#: Where to listen.
bind = _read("bind")
#: Sync workers: one request at a time each; (2 x cores) + 1 keeps CPUs busy while others wait on I/O.
#: gunicorn's own, except that a stopping worker first serves the connections already queued for it.
worker_class = "service.gunicorn_worker.DrainingSyncWorker"
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
#: Never preload the app: pools must be created after fork.
preload_app = False
#: The service writes its own request log line (service.access); gunicorn's access log would duplicate it.
accesslog = None
errorlog = "-"
loglevel = _read("log_level").lower()
#: Bounded request line and headers (gunicorn's defaults, stated).
limit_request_line = 4094
limit_request_fields = 100

#: Seconds between SIGTERM and closing the listening socket, while /readyz answers 503 (not a gunicorn setting).
_drain_seconds = _read("drain_seconds")


def on_starting(server: Any) -> None:
    """Empty the metrics folder: counts of a previous run must not be added to this one's.

    Not on USR2's new master (``GUNICORN_FD`` set): the old workers, still
    serving, keep writing there, and their counts belong to the totals.
    """
    if _metrics_dir is not None and "GUNICORN_FD" not in os.environ:
        _metrics_dir.mkdir(parents=True, exist_ok=True)
        empty_folder(_metrics_dir)


def child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's gauges (its counters stay: they are part of the totals)."""
    if _metrics_dir is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid, str(_metrics_dir))  # type: ignore[no-untyped-call]


def when_ready(server: Any) -> None:
    """Before the workers start: read the migration head once, and make SIGTERM drain first.

    Draining: ``/readyz`` 503 for ``CONDUIT_DRAIN_SECONDS``, then gunicorn's graceful stop.

    A balancer that checks ``/readyz`` takes the host out of rotation while it
    still serves everything it is sent; gunicorn then closes the listening
    socket and each worker finishes its request in flight and the connections
    already queued (``service.gunicorn_worker``). SIGHUP and USR2 need none of
    this: the listening socket stays open throughout (docs/deploy.md, "Rolling
    release"). SIGINT and SIGQUIT still stop at once, after the drain if one
    has begun.
    """
    with contextlib.suppress(MigrationsMissing):
        expected_head()  # read once here, before the workers fork, instead of by each worker's first /readyz
    graceful_stop = server.handle_term

    def drain_then_stop() -> None:
        start_draining()
        server.log.info("Draining: /readyz answers 503; stopping in %s s", _drain_seconds)
        time.sleep(_drain_seconds)
        graceful_stop()

    server.handle_term = drain_then_stop


def post_worker_init(worker: Any) -> None:
    """Warm the worker (``service.warmup``) before it accepts its first connection."""
    warm(worker.wsgi)
