"""Rate limiting with the ``limits`` library, as WSGI middleware.

Who is counted: the user when the request carries a token that the dispatcher
accepts, else the client address (``REMOTE_ADDR``, after ``ProxyFix`` for the
configured number of trusted proxies). Whether a well-signed token still
speaks for its account (not revoked by a sign-out or a password change) is
known only once the dispatcher has read the account, so such a request is
counted then: the dispatcher calls back (:data:`environ_keys.RATE_CHARGE`) with the
user's id, or with None for a token it refused, which then counts against the
address. A thief holding a revoked token spends the limits of the address it
sends from, never the owner's. A route that checks no token counts by address.

What is counted: the scopes the request's route declares (``Route.limit_scopes``):
``all`` against the default limits, and stricter limits for the operations
attackers like: ``login`` (per client address *and* per account email, to slow
password guessing from many addresses), ``register`` (per client address) and
``writes`` (per user). A request no route answers counts
against the default limits; health checks declare no scope.

The counters live in a storage shared by every worker (a SQLite file on one
host, Redis for several), so N workers never allow N times the limit. When the
storage fails, the request is served and the failure logged, unless the service
is configured to fail closed (503).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem, parse_many
from limits.strategies import RateLimiter

from service import auth, environ_keys
from service.config import Settings
from service.errors import ApiError
from service.metrics import NO_METRICS, Metrics
from service.middleware import BACKOFF_SECONDS

logger = logging.getLogger(__name__)

#: What a storage check gives back when the storage failed.
_DOWN = object()
#: A check's verdict: exceeded?, the limit to report, remaining, reset time, its counter's scope.
_Verdict = tuple[bool, RateLimitItem, int, float, str]
#: What a refusal says, by the counter's scope: the thing limited, and what there was too much of.
_REFUSALS = {
    "all": ("requests", "too many requests from this client"),
    "login": ("login", "too many attempts from this address"),
    "login-account": ("login", "too many attempts for this account"),
    "register": ("registration", "too many attempts from this address"),
    "writes": ("writes", "too many changes from this account"),
}


def limits_from(settings: Settings) -> Limits:
    """The limits of ``settings``, parsed."""
    return Limits.parse(
        settings.ratelimit_default, settings.ratelimit_login, settings.ratelimit_register, settings.ratelimit_writes
    )


@dataclass(frozen=True)
class Limits:
    """The configured limits, parsed once."""

    default: Sequence[RateLimitItem]
    login: Sequence[RateLimitItem]
    register: Sequence[RateLimitItem]
    writes: Sequence[RateLimitItem]

    @classmethod
    def parse(cls, default: str, login: str, register: str, writes: str) -> Limits:
        """From flask-limiter notation: ``"10/minute;50/hour"``; ``""`` for no limit."""
        return cls(*(parse_many(spec) if spec else () for spec in (default, login, register, writes)))


class RateLimitMiddleware:
    """Count each API request against its limits; 429 with RealWorld body when over.

    :param scopes: the rate-limit scopes of a request (its route's ``limits``).
    :param limiter: a ``limits`` strategy bound to the shared storage.
    :param secret: the token secret, to key authenticated requests by user id.
    :param max_body: bodies larger than this are not read for the login email.
    :param metrics: told of each refusal (429 by scope, 503 when the storage fails closed).
    """

    def __init__(
        self,
        app: Any,
        scopes: Callable[[dict[str, Any]], Sequence[str]],
        limiter: RateLimiter,
        limits: Limits,
        *,
        authenticates: Callable[[dict[str, Any]], bool],
        secret: str,
        key_prefix: str = "conduit",
        headers_enabled: bool = True,
        swallow_errors: bool = True,
        max_body: int = 1024 * 1024,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.scopes = scopes
        self.authenticates = authenticates
        self.limiter = limiter
        self.limits = limits
        self.secret = secret
        self.prefix = key_prefix
        self.headers_enabled = headers_enabled
        self.swallow_errors = swallow_errors
        self.max_body = max_body
        self._skip_until = 0.0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        scopes = self.scopes(environ)
        if not scopes:
            return self.app(environ, start_response)  # type: ignore[no-any-return]
        if time.monotonic() < self._skip_until:
            return self._storage_down(environ, start_response)
        user_id = self._user_id(environ) if self.authenticates(environ) else None
        if user_id is not None:
            return self._counted_once_authenticated(environ, start_response, scopes)
        verdict = self._safely(self._check, environ, scopes, None)
        if verdict is _DOWN:
            return self._storage_down(environ, start_response)
        headers = self._headers(verdict)
        if verdict is not None and verdict[0]:
            return self._refusal(verdict, headers)(environ, start_response)

        def start_with_headers(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, [*response_headers, *headers], exc_info)

        return self.app(environ, start_with_headers)  # type: ignore[no-any-return]

    def _counted_once_authenticated(
        self, environ: dict[str, Any], start_response: Any, scopes: Sequence[str]
    ) -> Iterable[bytes]:
        """Let the dispatcher say whose request it is before counting it (see the module docstring)."""
        headers: list[tuple[str, str]] = []
        charged: list[bool] = []

        def charge(user_id: int | None, answered: bool = False) -> None:
            if charged:
                return  # a request run again on a new database connection is counted once
            charged.append(True)
            verdict = self._safely(self._check, environ, scopes, user_id)
            if answered:
                return  # the answer is given; the count holds for the next request
            if verdict is _DOWN:
                if not self.swallow_errors:
                    raise ApiError.unavailable("rate_limit")  # the dispatcher answers (and counts) it
                return
            if verdict is not None and verdict[0]:
                raise self._refusal(verdict, self._headers(verdict))
            headers.extend(self._headers(verdict))

        def start_with_headers(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, [*response_headers, *headers], exc_info)

        environ[environ_keys.RATE_CHARGE] = charge
        body = self.app(environ, start_with_headers)
        if not charged:  # the dispatcher answered before it authenticated (a malformed request)
            charge(None, answered=True)
        return body  # type: ignore[no-any-return]

    def _safely(self, check: Callable[..., Any], *args: Any) -> Any:
        try:
            return check(*args)
        except Exception:
            self._skip_until = time.monotonic() + BACKOFF_SECONDS
            logger.warning("rate-limit storage failed; %s", "serving anyway" if self.swallow_errors else "refusing")
            return _DOWN

    def _headers(self, verdict: _Verdict | None) -> list[tuple[str, str]]:
        if verdict is None or not (self.headers_enabled or verdict[0]):
            return []
        _, item, remaining, reset, _ = verdict
        return [
            ("X-RateLimit-Limit", str(item.amount)),
            ("X-RateLimit-Remaining", str(remaining)),
            ("X-RateLimit-Reset", str(math.ceil(reset))),
        ]

    def _refusal(self, verdict: _Verdict, headers: list[tuple[str, str]]) -> ApiError:
        self.metrics.rate_limited(verdict[4])
        retry_after = max(1, math.ceil(verdict[3] - time.time()))
        limited, too_many = _REFUSALS[verdict[4]]
        return ApiError.too_many_requests(retry_after, dict(headers), limited, too_many)

    def _storage_down(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if self.swallow_errors:
            return self.app(environ, start_response)  # type: ignore[no-any-return]
        self.metrics.unavailable("rate_limit")
        return ApiError.unavailable("rate_limit")(environ, start_response)

    def _check(self, environ: dict[str, Any], scopes: Sequence[str], user_id: int | None) -> _Verdict | None:
        """Hit every limit of the request's scopes for ``user_id`` (None: the address); stop at the first exceeded.

        :returns: (exceeded, the limit to report, remaining, reset time, its counter's scope),
            or None when no limit applies.
        """
        client = f"ip:{environ.get('REMOTE_ADDR') or 'unknown'}"
        subject = f"user:{user_id}" if user_id is not None else client
        checks: list[tuple[RateLimitItem, str, str]] = []
        if "all" in scopes:
            checks += [(item, "all", subject) for item in self.limits.default]
        if "login" in scopes:
            checks += [(item, "login", client) for item in self.limits.login]
            email = self._login_email(environ)
            if email:
                checks += [(item, "login-account", email) for item in self.limits.login]
        if "register" in scopes:
            checks += [(item, "register", client) for item in self.limits.register]
        if "writes" in scopes and user_id is not None:
            checks += [(item, "writes", subject) for item in self.limits.writes]
        if not checks:
            return None
        report: tuple[RateLimitItem, int, float] | None = None
        for item, scope, who in checks:
            identifiers = (self.prefix, scope, who)
            if not self.limiter.hit(item, *identifiers):
                stats = self.limiter.get_window_stats(item, *identifiers)
                return True, item, 0, stats.reset_time, scope
            if self.headers_enabled:
                stats = self.limiter.get_window_stats(item, *identifiers)
                if report is None or stats.remaining < report[1]:
                    report = (item, stats.remaining, stats.reset_time)
        if report is None:
            first = checks[0][0]
            return False, first, first.amount, time.time() + first.get_expiry(), checks[0][1]
        return False, *report, ""

    def _user_id(self, environ: dict[str, Any]) -> int | None:
        """The user a well-signed token names; None for anonymous or bad tokens (the dispatcher answers those)."""
        try:
            claims = auth.request_claims(environ, self.secret)  # decoded once; the dispatcher reuses it
        except ApiError:
            return None
        return claims.user_id if claims else None

    def _login_email(self, environ: dict[str, Any]) -> str | None:
        """The email a login attempt names, read from a buffered copy of the body."""
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return None
        if length <= 0 or length > self.max_body:
            return None
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)  # the dispatcher reads it again
        try:
            email = json.loads(body)["user"]["email"]
        except (ValueError, TypeError, KeyError):
            return None
        if not isinstance(email, str) or not email.strip():
            return None
        # Hashed: the storage (e.g. a shared Redis) need not hold email addresses.
        return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
