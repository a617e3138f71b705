"""Settings: one frozen dataclass that declares every ``CONDUIT_*`` variable once.

Only ``wsgi.py`` (and the admin entry points) call :meth:`Settings.from_env`;
everything else receives a ``Settings`` instance, so tests build their own.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from ipaddress import ip_network
from pathlib import Path
from typing import Any

from limits import parse_many
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

#: Prefix of every environment variable the service reads.
ENV_PREFIX = "CONDUIT_"
#: After a shared storage fails (the response cache, the rate-limit counters), the layer using it
#: leaves it alone for this many seconds: one timeout per worker, not one per request.
BACKOFF_SECONDS = 2.0
#: Shortest secret accepted: HS256 wants a key at least as long as its hash.
MIN_SECRET_BYTES = 32
#: Shortest bearer token accepted for ``/metrics``.
MIN_METRICS_TOKEN = 16
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


#: The instance folder when none is set, relative to the working directory.
_INSTANCE = Path("instance")


def _setting(default: Any, normalize: Callable[[str], str] | None = None) -> Any:
    """Declare a setting: its default (its name and type are the field's; what it means, the README's table).

    :param normalize: applied to the environment's text before parsing (``str.lower``
        for the settings whose values are case-insensitive).
    """
    return field(default=default, metadata={"normalize": normalize})


@dataclass(frozen=True)
class Settings:
    """Everything the service needs to know about its environment: the one declaration of every setting.

    Each field is ``CONDUIT_<NAME>``: its type says how the text is parsed
    (``int``, ``bool``: true/false/1/0/yes/no/on/off, ``tuple``: comma-separated)
    and its default is the default; what it means is its line in the README's
    settings table (a test holds the table to these fields). Defaults that
    depend on another setting are resolved in ``__post_init__``: ``""`` or
    ``None`` below means "see there".
    """

    secret_key: str = _setting("")
    env: str = _setting("development", str.lower)
    database_url: str = _setting("")
    instance_path: Path = _setting(_INSTANCE)  # noqa: RUF009
    auto_migrate: bool | None = _setting(None)
    token_ttl: int = _setting(7 * 24 * 3600)
    cors_origins: tuple[str, ...] = _setting(("*",))
    max_body_bytes: int = _setting(1024 * 1024)
    db_pool_size: int = _setting(5)
    db_connect_timeout: int = _setting(5)
    log_format: str = _setting("text", str.lower)
    log_level: str = _setting("INFO", str.upper)
    ratelimit_enabled: bool = _setting(True)
    ratelimit_default: str = _setting("")
    ratelimit_login: str = _setting("")
    ratelimit_register: str = _setting("")
    ratelimit_writes: str = _setting("")
    ratelimit_storage_uri: str = _setting("")
    ratelimit_strategy: str = _setting("fixed-window", str.lower)
    ratelimit_headers_enabled: bool = _setting(False)
    ratelimit_swallow_errors: bool = _setting(True)
    ratelimit_key_prefix: str = _setting("conduit")
    trusted_proxy_hops: int = _setting(0)
    cache_url: str = _setting("sqlitefile")
    cache_ttl: int = _setting(60)
    cache_threshold: int = _setting(10000)
    cache_max_bytes: int = _setting(256 * 1024 * 1024)
    cache_min_uses: int = _setting(2)
    cache_key_prefix: str = _setting("conduit")
    metrics_allow: tuple[str, ...] = _setting(())
    metrics_token: str = _setting("")
    metrics_dir: str = _setting("")
    # Read by service.gunicorn_conf, not by the application.
    bind: str = _setting("127.0.0.1:8000")
    workers: int = _setting(0)
    worker_timeout: int = _setting(30)
    graceful_timeout: int = _setting(30)
    drain_seconds: int = _setting(5)
    max_requests: int = _setting(2000)
    max_requests_jitter: int = _setting(200)
    forwarded_allow_ips: str = _setting("127.0.0.1")

    def __post_init__(self) -> None:
        if self.env not in _ENVIRONMENTS:
            raise ConfigError(f"CONDUIT_ENV must be one of {', '.join(_ENVIRONMENTS)}, not {self.env!r}")
        if not self.database_url:
            object.__setattr__(self, "database_url", default_database_url(self.instance_path))
        if self.auto_migrate is None:
            object.__setattr__(self, "auto_migrate", self.database_url.startswith("sqlite"))
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
        if self.cache_threshold < 1 or self.cache_min_uses < 1 or self.cache_max_bytes < 1:
            raise ConfigError("CONDUIT_CACHE_THRESHOLD and CONDUIT_CACHE_MIN_USES must be at least 1")
        if self.token_ttl <= 0:
            raise ConfigError("CONDUIT_TOKEN_TTL must be a positive number of seconds")
        try:
            networks = tuple(str(ip_network(allowed, strict=False)) for allowed in self.metrics_allow)
            object.__setattr__(self, "metrics_allow", networks)
        except ValueError:
            raise ConfigError("CONDUIT_METRICS_ALLOW must list addresses or networks (10.0.0.0/8)") from None
        if self.metrics_token and len(self.metrics_token) < MIN_METRICS_TOKEN:
            raise ConfigError(f"CONDUIT_METRICS_TOKEN must be at least {MIN_METRICS_TOKEN} characters")

    @property
    def metrics_enabled(self) -> bool:
        """``/metrics`` is served (and the service counts) only once someone is allowed to read it."""
        return bool(self.metrics_allow or self.metrics_token)

    def __repr__(self) -> str:
        # Never let the secret (or a password inside a URL) reach a log line through a repr.
        return (
            f"Settings(env={self.env!r}, database_url={_redacted(self.database_url)!r}, "
            f"ratelimit_storage_uri={_redacted(self.ratelimit_storage_uri)!r}, "
            f"cache_url={_redacted(self.cache_url)!r})"
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``CONDUIT_*`` variables; those not set keep their declared defaults.

        In development, with no secret given, a random one is generated once and
        kept in the instance folder so that restarts keep issued tokens valid.

        :raises ConfigError: if a value is malformed, or production lacks a strong secret.
        """
        env = os.environ if environ is None else environ
        values = {f.name: cls.read(f.name, env) for f in fields(cls)}
        if not values["secret_key"] and values["env"] == "development":
            values["secret_key"] = _instance_secret(values["instance_path"])
        return cls(**values)

    @classmethod
    def read(cls, name: str, environ: Mapping[str, str] | None = None) -> Any:
        """One setting, parsed from ``CONDUIT_<NAME>`` as declared, or its default when unset.

        For readers that need one value without the rest (gunicorn's settings,
        Alembic's database URL): no secret is required to read them.

        :raises ConfigError: naming the variable, when its value cannot be parsed.
        """
        declared = _FIELDS[name]
        env = os.environ if environ is None else environ
        raw = env.get(ENV_PREFIX + name.upper(), "").strip()
        if declared.metadata["normalize"] and raw:
            raw = declared.metadata["normalize"](raw)
        if not raw:
            return _INSTANCE.resolve() if name == "instance_path" else declared.default
        try:
            return _PARSERS[str(declared.type)](raw)
        except ValueError:
            raise ConfigError(
                f"{ENV_PREFIX}{name.upper()} must be {_EXPECTED[str(declared.type)]}, not {raw!r}"
            ) from None


def _bool(raw: str) -> bool:
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


#: How the text of a variable becomes a value, by the field's declared type.
_PARSERS: dict[str, Callable[[str], Any]] = {
    "str": str,
    "int": int,
    "bool": _bool,
    "bool | None": _bool,
    "Path": lambda raw: Path(raw).resolve(),
    "tuple[str, ...]": lambda raw: tuple(part.strip() for part in raw.split(",") if part.strip()),
}
_EXPECTED = {"int": "an integer", "bool": "true or false", "bool | None": "true or false"}
_FIELDS = {f.name: f for f in fields(Settings)}


def instance_path_from_env(environ: Mapping[str, str] | None = None) -> Path:
    """The instance folder: ``CONDUIT_INSTANCE_PATH``, or ``./instance``."""
    return Settings.read("instance_path", environ)  # type: ignore[no-any-return]


def database_url_from_env(environ: Mapping[str, str] | None = None) -> str:
    """The database URL alone, for tools (Alembic) that must not need the secret."""
    url = Settings.read("database_url", environ)
    return url or default_database_url(instance_path_from_env(environ))


def default_database_url(instance: Path) -> str:
    """The embedded default: a SQLite file in the instance folder."""
    return f"sqlite:///{instance / 'conduit.db'}"


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


def _redacted(url: str) -> str:
    """A URL with its password hidden (SQLAlchemy's rendering); a value that is no URL as it is."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url  # e.g. "sqlitefile": nothing to hide
