"""What the service counts for Prometheus, and nothing at all when no one may read it.

``/metrics`` is off unless an operator says who may scrape it
(``CONDUIT_METRICS_ALLOW``, ``CONDUIT_METRICS_TOKEN``). Off, every layer holds
the no-op :class:`Metrics`, and prometheus_client is never imported. On, they
hold :class:`PrometheusMetrics`; every series is bounded: requests are labelled
by their route's *template* (``/api/articles/{slug}``), never the raw path, and
by method (``other`` for a method no route has) and status class.

**Several processes.** A server that runs several processes (gunicorn,
uWSGI, mod_wsgi with ``processes=N``) needs ``CONDUIT_METRICS_DIR``:
prometheus_client's multiprocess mode, where each process writes its counts
to files in that folder and a scrape adds up the files of every process,
including those that have exited, so a total never goes back when a worker is
replaced. ``service.gunicorn_conf`` sets the folder (``<instance>/metrics``),
empties it when gunicorn starts and removes a dead worker's gauges. Without a
folder, a scrape of a multi-process server is refused: each process would
answer for itself alone.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event

from service.config import ConfigError, Settings

#: Methods that label requests as they are; any other is counted as ``other`` (a label set must stay bounded).
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: Request latency buckets, in seconds: this service answers in milliseconds; a slow answer is a finding.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: One cache hit in this many has its latency observed (each process's first, then every eighth).
HIT_LATENCY_SAMPLE = 8
#: The environment variable through which prometheus_client learns its multiprocess folder.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class Metrics:
    """The events the layers report; each does nothing here (metrics off).

    The layers are handed one instance by ``create_app`` and call it whether or
    not anyone scrapes: off, a call is a no-op method.
    """

    enabled = False

    def request(self, route: str, method: str, status: int, cache: str, seconds: float) -> None:
        """A request answered: its route template (``(unmatched)``, ``(other)``), method, status, what the
        response cache did (``hit``, ``miss``, ``none`` when it did not look), latency."""

    def cache_store(self, route: str) -> None:
        """An answer of ``route`` was handed to the response cache to keep."""

    def cache_invalidations(self, keys: int) -> None:
        """A committed write forgot ``keys`` surrogate keys."""

    def cache_delivery(self, ok: bool, late_rows: int) -> None:
        """A delivery of the journal to the shared cache ran (``shared_reads.delivery``): whether it reached
        the cache, and how many rows it bumped before their writer did (the cache was away from the writer)."""

    def rate_limited(self, scope: str) -> None:
        """A request was refused with 429 by a limit of ``scope``."""

    def unavailable(self, cause: str) -> None:
        """A 503 was answered because ``cause`` (``database``, ``cache``, ``rate_limit``...) was not available."""

    def failed_login(self) -> None:
        """A login was refused for its credentials."""

    def tokens_revoked(self) -> None:
        """A committed write revoked a user's tokens (sign-out everywhere, password change)."""

    def pool_timeout(self) -> None:
        """A request waited for a pooled connection in vain."""

    def retried(self, cause: str) -> None:
        """A request was run again from the start (``disconnect``, ``read_only``, ``deadlock``: ``Dispatcher``)."""

    def watch_pool(self, engine: Engine, pool: str) -> None:
        """Count ``engine``'s checkouts, new connections and errors as ``pool`` (``write``, ``read``)."""

    def exposition(self, accept: str) -> tuple[bytes, str]:
        """The metrics in the text format the ``Accept`` header prefers, and its content type."""
        raise NotImplementedError("metrics are off")

    @property
    def multiprocess(self) -> bool:
        """Whether every process's counts are added up (``CONDUIT_METRICS_DIR``)."""
        return False


#: The no-op, for layers built without metrics (tests, the CLI).
NO_METRICS = Metrics()


def make_metrics(settings: Settings, build: Callable[[], tuple[str, str]]) -> Metrics:
    """The metrics ``settings`` ask for: Prometheus once ``/metrics`` may be read, else the no-op.

    :param build: the version and the migration head, for ``conduit_build_info``; asked only when
        metrics are on (reading the head loads Alembic, which a worker otherwise never needs).
    """
    if not settings.metrics_enabled:
        return NO_METRICS
    if not settings.metrics_dir:
        return PrometheusMetrics(None, build())
    folder = Path(settings.metrics_dir).resolve()
    # One set of values per process and folder: a second one (a second app built in this process) would
    # keep its own copy of each count and write over the first's.
    if folder not in _IN_FOLDER:
        _IN_FOLDER[folder] = PrometheusMetrics(folder, build())
    return _IN_FOLDER[folder]


#: The metrics of this process, by multiprocess folder.
_IN_FOLDER: dict[Path, PrometheusMetrics] = {}


class PrometheusMetrics(Metrics):
    """The events, counted with prometheus_client (imported only here, when metrics are on)."""

    enabled = True

    def __init__(self, folder: Path | None, build: tuple[str, str]) -> None:
        if folder is not None:
            _use_folder(folder)
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

        # No ``_created`` twin of every series (the multiprocess mode has none either).
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.folder = folder
        # In-process, the metrics are registered here and a scrape reads them; in multiprocess mode
        # they are registered nowhere (their values are in files) and a scrape reads the folder.
        self.registry = CollectorRegistry(auto_describe=True)
        registry = None if folder is not None else self.registry

        def counter(name: str, text: str, labels: tuple[str, ...] = ()) -> Any:
            return Counter(name, text, labels, registry=registry)

        # Every request is counted exactly, one value written; its latency is a histogram's two more, for every
        # request but a cache hit, of which one in HIT_LATENCY_SAMPLE is timed: the cheapest answer there is
        # then costs the metrics a value and a quarter, not two (bench/metrics_cost.py, issue 29). The hits'
        # latency distribution is the same in a uniform sample; only the histogram's _count is smaller.
        labels = ("route", "method", "status", "cache")
        self._requests = counter(
            "conduit_http_requests",
            "Requests answered, by route template, method, status class and what the response cache did",
            labels,
        )
        self._latency = Histogram(
            "conduit_http_request_duration_seconds",
            "How long the service took to have an answer ready, by the same labels: every request but cache "
            f"hits, of which one in {HIT_LATENCY_SAMPLE} per process (conduit_http_requests counts them all)",
            labels,
            buckets=_BUCKETS,
            registry=registry,
        )
        self._stores = counter(
            "conduit_cache_stores",
            "Answers handed to the response cache to keep (it refuses one computed across a write)",
            ("route",),
        )
        self._invalidations = counter(
            "conduit_cache_invalidations", "Surrogate keys forgotten by committed writes (what they changed)"
        )
        self._deliveries = counter(
            "conduit_cache_journal_deliveries",
            "Deliveries of the invalidation journal to the shared cache, by outcome (ok, failed: the cache "
            "is bypassed until one is ok again)",
            ("outcome",),
        )
        self._late_rows = counter(
            "conduit_cache_journal_late_rows",
            "Journal rows a delivery bumped before their writer did: the writer could not reach the shared "
            "cache (or, now and then, the delivery read the row in the millisecond after its commit)",
        )
        self._refusals = counter("conduit_ratelimit_refusals", "Requests refused with 429, by limit scope", ("scope",))
        self._unavailable = counter("conduit_unavailable", "Requests answered 503, by what was unavailable", ("cause",))
        self._failed_logins = counter("conduit_login_failures", "Logins refused for their credentials")
        self._revocations = counter(
            "conduit_token_revocations", "Writes that revoked every earlier token of a user (sign-out, password)"
        )
        self._checkouts = counter("conduit_db_pool_checkouts", "Connections taken from a pool", ("pool",))
        self._waits = counter(
            "conduit_db_pool_waits",
            "Checkouts that found no idle connection and waited for a new one to be opened",
            ("pool",),
        )
        self._db_errors = counter(
            "conduit_db_errors",
            "Database errors: connect, disconnect, pool_timeout, or the statement's error class",
            ("kind",),
        )
        self._retries = counter(
            "conduit_db_retries", "Requests run again: a dead connection, a standby, a deadlock", ("cause",)
        )
        info = Gauge(
            "conduit_build_info",
            "The running code: its version and the migration head it expects (value 1)",
            ("version", "migration_head"),
            registry=registry,
            multiprocess_mode="livemax",
        )
        info.labels(*build).set(1)
        # A request's series, found once per label set (labels() takes a lock and builds a key each call).
        self._request_series: dict[tuple[str, str, int, str], tuple[Any, Any]] = {}
        self._hits_seen = 0
        self._watched: set[int] = set()

    @property
    def multiprocess(self) -> bool:
        return self.folder is not None

    def request(self, route: str, method: str, status: int, cache: str, seconds: float) -> None:
        if method not in _METHODS:
            method = "other"
        key = (route, method, status, cache)
        series = self._request_series.get(key)
        if series is None:
            labels = (route, method, f"{status // 100}xx", cache)
            series = self._request_series[key] = (self._requests.labels(*labels), self._latency.labels(*labels))
        series[0].inc()
        if cache == "hit":
            seen, self._hits_seen = self._hits_seen, self._hits_seen + 1
            if seen % HIT_LATENCY_SAMPLE:
                return
        series[1].observe(seconds)

    def cache_store(self, route: str) -> None:
        self._stores.labels(route).inc()

    def cache_invalidations(self, keys: int) -> None:
        self._invalidations.inc(keys)

    def cache_delivery(self, ok: bool, late_rows: int) -> None:
        self._deliveries.labels("ok" if ok else "failed").inc()
        if late_rows:
            self._late_rows.inc(late_rows)

    def rate_limited(self, scope: str) -> None:
        self._refusals.labels(scope).inc()

    def unavailable(self, cause: str) -> None:
        self._unavailable.labels(cause).inc()

    def failed_login(self) -> None:
        self._failed_logins.inc()

    def tokens_revoked(self) -> None:
        self._revocations.inc()

    def pool_timeout(self) -> None:
        self._db_errors.labels("pool_timeout").inc()

    def retried(self, cause: str) -> None:
        self._retries.labels(cause).inc()

    def watch_pool(self, engine: Engine, pool: str) -> None:
        if id(engine.pool) in self._watched:
            return  # a twin engine on the same pool (in-memory SQLite's reads) is already counted
        self._watched.add(id(engine.pool))
        event.listen(engine.pool, "checkout", _counting(self._checkouts.labels(pool)))
        event.listen(engine.pool, "connect", _counting(self._waits.labels(pool)))
        event.listen(engine, "handle_error", self._count_error)

    def _count_error(self, context: Any) -> None:
        if context.connection is None and not context.is_disconnect:
            kind = "connect"  # SQLAlchemy gives no connection when the error is the connecting itself
        elif context.is_disconnect:
            kind = "disconnect"
        else:
            kind = type(context.sqlalchemy_exception).__name__  # IntegrityError, OperationalError...: a few classes
        self._db_errors.labels(kind).inc()

    def exposition(self, accept: str) -> tuple[bytes, str]:
        from prometheus_client.exposition import choose_encoder

        encoder, content_type = choose_encoder(accept)
        registry = self.registry
        if self.folder is not None:
            from prometheus_client import CollectorRegistry, multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=str(self.folder))  # type: ignore[no-untyped-call]
        return encoder(registry), content_type


def _counting(series: Any) -> Callable[..., None]:
    """A pool event listener that counts one on ``series`` per event."""

    def count(*_: Any) -> None:
        series.inc()

    return count


def _use_folder(folder: Path) -> None:
    """Put prometheus_client in multiprocess mode on ``folder``, before any metric is made.

    The library's documented switch: its values then live in this process's
    files there (``PROMETHEUS_MULTIPROC_DIR``, read when a metric is made).
    """
    folder.mkdir(parents=True, exist_ok=True)
    os.environ[MULTIPROC_ENV] = str(folder)
    from prometheus_client import values

    if values.ValueClass is values.MutexValue:  # the library was loaded before the folder was known
        raise ConfigError(
            f"CONDUIT_METRICS_DIR must be set before prometheus_client is first imported (as {MULTIPROC_ENV},"
            " which service.gunicorn_conf sets): this process already counts in memory"
        )


def empty_folder(folder: Path) -> None:
    """Remove the counts of a previous run (prometheus_client wants the folder empty when the server starts)."""
    for path in folder.glob("*.db"):
        path.unlink(missing_ok=True)
