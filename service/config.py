"""Settings: one frozen dataclass, read from ``CONDUIT_*`` environment variables.

Only ``wsgi.py`` (and the admin entry points) call :meth:`Settings.from_env`;
everything else receives a ``Settings`` instance, so tests build their own.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from limits import parse_many

#: Prefix of every environment variable the service reads.
ENV_PREFIX = "CONDUIT_"
#: Execution option the dispatcher sets on a request's connection when the
#: request may write; the SQLite engine answers it with ``BEGIN IMMEDIATE``.
WRITE_INTENT = "conduit_write_intent"
#: WSGI environ keys: the request id (set by the request-log middleware) and the
#: authenticated user's id (set by the dispatcher, read back for the log line).
REQUEST_ID_KEY = "conduit.request_id"
USER_ID_KEY = "conduit.user_id"
#: WSGI environ key: what the request's token says (or the 401 it earns), read once per request.
TOKEN_CLAIMS_KEY = "conduit.token_claims"
#: WSGI environ keys between the response cache and the dispatcher, for signed-in reads of shared
#: answers: the cached anonymous answer to personalise (bytes); "store the shared part of your answer";
#: and that shared part (bytes), handed back for the cache to store.
SHARED_ANSWER_KEY = "conduit.shared_answer"
SHARED_WANTED_KEY = "conduit.shared_wanted"
SHARED_STORE_KEY = "conduit.shared_store"
#: Shortest secret accepted: HS256 wants a key at least as long as its hash.
MIN_SECRET_BYTES = 32
#: Secrets that are obviously copied from an example and must never sign tokens.
_PLACEHOLDER_SECRETS = frozenset(
    {"", "secret", "changeme", "change-me", "change_me", "dev", "development", "test", "xxx"}
)
_ENVIRONMENTS = ("development", "production", "testing")
_STRATEGIES = ("fixed-window", "moving-window", "sliding-window-counter")
#: Rate limits when none are set, by environment. Production is strict on the
#: operations attackers like; development (and testing) keeps one generous limit
#: per client and none per operation, so a RealWorld client test suite or a front
#: end's edit-reload loop from one address is never refused. "" means no limit.
_GENEROUS = {
    "ratelimit_default": "6000/minute",
    "ratelimit_login": "",
    "ratelimit_register": "",
    "ratelimit_writes": "",
}
RATELIMIT_DEFAULTS: Mapping[str, Mapping[str, str]] = {
    "production": {
        "ratelimit_default": "300/minute",
        "ratelimit_login": "10/minute;50/hour",
        "ratelimit_register": "5/minute;50/hour",
        "ratelimit_writes": "60/minute;1000/hour",
    },
    "development": _GENEROUS,
    "testing": _GENEROUS,
}


class ConfigError(Exception):
    """The configuration cannot be used; the message says which setting and why."""


def secret_problem(secret: str) -> str | None:
    """Say what is wrong with a signing secret, or return None if it is strong enough."""
    if secret.strip().lower() in _PLACEHOLDER_SECRETS:
        return "is empty or a placeholder"
    if len(secret.encode()) < MIN_SECRET_BYTES:
        return f"must be at least {MIN_SECRET_BYTES} bytes long"
    if len(set(secret)) < 8:
        return "is too repetitive to be a random secret"
    return None


@dataclass(frozen=True)
class Settings:
    """Everything the service needs to know about its environment.

    :param env: ``development`` (default), ``production`` or ``testing``.
    :param database_url: SQLAlchemy URL; SQLite file in the instance folder by default.
    :param secret_key: HS256 signing key for tokens.
    :param token_ttl: token lifetime in seconds.
    :param instance_path: folder for the SQLite file and the development secret.
    :param cors_origins: origins allowed by CORS; ``("*",)`` allows any.
    :param auto_migrate: run ``alembic upgrade head`` when the app is created.
    :param max_body_bytes: larger request bodies are refused with 413.
    :param db_pool_size: connections per worker process (PostgreSQL).
    :param db_connect_timeout: seconds to wait for a database connection.
    :param log_format: ``text`` or ``json`` lines on stderr.
    :param log_level: level name for the service's loggers.
    :param ratelimit_enabled: apply the rate limits below.
    :param ratelimit_default: limits per client (user id, or address when
        anonymous) on every API request, flask-limiter notation (``"100/minute;2000/hour"``).
    :param ratelimit_login: limits on ``POST /api/users/login`` per client address and per email.
    :param ratelimit_register: limits on ``POST /api/users`` per client address.
    :param ratelimit_writes: limits on writes (POST/PUT/DELETE) per authenticated user.
        These four default (``""``) to the environment's :data:`RATELIMIT_DEFAULTS`.
    :param ratelimit_storage_uri: ``limits`` storage; a SQLite file shared by the host's
        workers by default, ``redis://`` (or ``memcached://``) for several hosts.
    :param ratelimit_strategy: ``fixed-window``, ``moving-window`` or ``sliding-window-counter``.
    :param ratelimit_headers_enabled: send ``X-RateLimit-*`` headers on allowed responses
        too (off by default, as in flask-limiter: it costs two storage reads per request).
    :param ratelimit_swallow_errors: when the storage fails, serve the request (true) or 503 (false).
    :param ratelimit_key_prefix: prefix of every counter key (share a Redis between services).
    :param trusted_proxy_hops: how many reverse proxies' ``X-Forwarded-For`` entries to believe.
    :param cache_url: ``sqlitefile`` (a SQLite file in the instance folder, shared
        by the host's workers), ``filesystem``, ``redis://...`` for several hosts,
        or ``null`` to disable.
    :param cache_ttl: seconds a cached response may be served.
    :param cache_threshold: at most about this many entries in a host-local cache
        (``sqlitefile``, ``filesystem``); the soonest to expire go first. A Redis
        cache is bounded by Redis's own ``maxmemory``.
    :param cache_min_uses: a worker stores an answer once it has missed its URL
        this many times (nginx's ``proxy_cache_min_uses``); 2 keeps one-off URLs out.
    :param cache_key_prefix: prefix of every cache key.
    """

    secret_key: str
    env: str = "development"
    database_url: str = ""
    token_ttl: int = 7 * 24 * 3600
    instance_path: Path = Path("instance")
    cors_origins: tuple[str, ...] = ("*",)
    auto_migrate: bool = False
    max_body_bytes: int = 1024 * 1024
    db_pool_size: int = 5
    db_connect_timeout: int = 5
    log_format: str = "text"
    log_level: str = "INFO"
    ratelimit_enabled: bool = True
    ratelimit_default: str = ""
    ratelimit_login: str = ""
    ratelimit_register: str = ""
    ratelimit_writes: str = ""
    ratelimit_storage_uri: str = ""
    ratelimit_strategy: str = "fixed-window"
    ratelimit_headers_enabled: bool = False
    ratelimit_swallow_errors: bool = True
    ratelimit_key_prefix: str = "conduit"
    trusted_proxy_hops: int = 0
    cache_url: str = "sqlitefile"
    cache_ttl: int = 60
    cache_threshold: int = 10000
    cache_min_uses: int = 2
    cache_key_prefix: str = "conduit"

    def __post_init__(self) -> None:
        if self.env not in _ENVIRONMENTS:
            raise ConfigError(f"CONDUIT_ENV must be one of {', '.join(_ENVIRONMENTS)}, not {self.env!r}")
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{self.instance_path / 'conduit.db'}")
        if self.env == "production":
            problem = secret_problem(self.secret_key)
            if problem:
                raise ConfigError(f"CONDUIT_SECRET_KEY {problem}; production refuses to start without a strong secret")
        elif not self.secret_key:
            raise ConfigError("secret_key is required")
        if self.log_format not in ("text", "json"):
            raise ConfigError(f"CONDUIT_LOG_FORMAT must be text or json, not {self.log_format!r}")
        for name, default in RATELIMIT_DEFAULTS[self.env].items():
            if not getattr(self, name):
                object.__setattr__(self, name, default)
            try:
                if getattr(self, name):  # "" is no limit
                    parse_many(getattr(self, name))
            except ValueError:
                raise ConfigError(f"{ENV_PREFIX}{name.upper()} is not a limit such as '100/minute;2000/hour'") from None
        if self.ratelimit_strategy not in _STRATEGIES:
            raise ConfigError(f"{ENV_PREFIX}RATELIMIT_STRATEGY must be one of {', '.join(_STRATEGIES)}")
        if not self.ratelimit_storage_uri:
            uri = f"sqlitefile://{(self.instance_path / 'ratelimit.db').resolve()}"
            object.__setattr__(self, "ratelimit_storage_uri", uri)
        if self.trusted_proxy_hops < 0 or self.cache_ttl < 0:
            raise ConfigError("CONDUIT_TRUSTED_PROXY_HOPS and CONDUIT_CACHE_TTL cannot be negative")
        if self.cache_threshold < 1 or self.cache_min_uses < 1:
            raise ConfigError("CONDUIT_CACHE_THRESHOLD and CONDUIT_CACHE_MIN_USES must be at least 1")
        if self.token_ttl <= 0:
            raise ConfigError("CONDUIT_TOKEN_TTL must be a positive number of seconds")

    def __repr__(self) -> str:
        # Never let the secret (or a password inside a URL) reach a log line through a repr.
        return (
            f"Settings(env={self.env!r}, database_url={_redact_url(self.database_url)!r}, "
            f"ratelimit_storage_uri={_redact_url(self.ratelimit_storage_uri)!r}, "
            f"cache_url={_redact_url(self.cache_url)!r})"
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``CONDUIT_*`` variables.

        In development, with no secret given, a random one is generated once and
        kept in the instance folder so that restarts keep issued tokens valid.

        :raises ConfigError: if a value is malformed, or production lacks a strong secret.
        """
        env = os.environ if environ is None else environ

        def get(name: str, default: str = "") -> str:
            return env.get(ENV_PREFIX + name, default).strip()

        mode = get("ENV", "development").lower()
        instance = instance_path_from_env(env)
        database_url = get("DATABASE_URL")
        secret = get("SECRET_KEY")
        if not secret and mode == "development":
            secret = _instance_secret(instance)
        is_sqlite = not database_url or database_url.startswith("sqlite")
        return cls(
            env=mode,
            database_url=database_url,
            secret_key=secret,
            token_ttl=_int(get, "TOKEN_TTL", 7 * 24 * 3600),
            instance_path=instance,
            cors_origins=tuple(o.strip() for o in get("CORS_ORIGINS", "*").split(",") if o.strip()),
            auto_migrate=_bool(get, "AUTO_MIGRATE", is_sqlite),
            max_body_bytes=_int(get, "MAX_BODY_BYTES", 1024 * 1024),
            db_pool_size=_int(get, "DB_POOL_SIZE", 5),
            db_connect_timeout=_int(get, "DB_CONNECT_TIMEOUT", 5),
            log_format=get("LOG_FORMAT", "text").lower(),
            log_level=get("LOG_LEVEL", "INFO").upper(),
            ratelimit_enabled=_bool(get, "RATELIMIT_ENABLED", True),
            ratelimit_default=get("RATELIMIT_DEFAULT"),
            ratelimit_login=get("RATELIMIT_LOGIN"),
            ratelimit_register=get("RATELIMIT_REGISTER"),
            ratelimit_writes=get("RATELIMIT_WRITES"),
            ratelimit_storage_uri=get("RATELIMIT_STORAGE_URI"),
            ratelimit_strategy=get("RATELIMIT_STRATEGY", "fixed-window").lower(),
            ratelimit_headers_enabled=_bool(get, "RATELIMIT_HEADERS_ENABLED", False),
            ratelimit_swallow_errors=_bool(get, "RATELIMIT_SWALLOW_ERRORS", True),
            ratelimit_key_prefix=get("RATELIMIT_KEY_PREFIX", "conduit"),
            trusted_proxy_hops=_int(get, "TRUSTED_PROXY_HOPS", 0),
            cache_url=get("CACHE_URL", "sqlitefile"),
            cache_ttl=_int(get, "CACHE_TTL", 60),
            cache_threshold=_int(get, "CACHE_THRESHOLD", 10000),
            cache_min_uses=_int(get, "CACHE_MIN_USES", 2),
            cache_key_prefix=get("CACHE_KEY_PREFIX", "conduit"),
        )


def instance_path_from_env(environ: Mapping[str, str] | None = None) -> Path:
    """The instance folder: ``CONDUIT_INSTANCE_PATH``, or ``./instance``."""
    env = os.environ if environ is None else environ
    return Path(env.get(ENV_PREFIX + "INSTANCE_PATH", "").strip() or "instance").resolve()


def database_url_from_env(environ: Mapping[str, str] | None = None) -> str:
    """The database URL alone, for tools (Alembic) that must not need the secret."""
    env = os.environ if environ is None else environ
    url = env.get(ENV_PREFIX + "DATABASE_URL", "").strip()
    return url or f"sqlite:///{instance_path_from_env(env) / 'conduit.db'}"


def _int(get: object, name: str, default: int) -> int:
    raw = get(name)  # type: ignore[operator]
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{ENV_PREFIX}{name} must be an integer, not {raw!r}") from None


def _bool(get: object, name: str, default: bool) -> bool:
    raw = str(get(name)).lower()  # type: ignore[operator]
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{ENV_PREFIX}{name} must be true or false, not {raw!r}")


def _instance_secret(instance: Path) -> str:
    """Return the development secret kept in the instance folder, creating it once.

    Several workers may start at the same moment: the secret is written to a
    private temporary file and hard-linked into place, which fails if another
    process won, so every process ends up reading the same complete secret.
    """
    instance.mkdir(parents=True, exist_ok=True)
    path = instance / "secret_key"
    if not path.exists():
        tmp = instance / f".secret_key.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()


def _redact_url(url: str) -> str:
    """Hide the password of a database URL."""
    scheme, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}"
