"""Rate limiting with the ``limits`` library: the limits, who a request counts against, and the verdict.

Who is counted: the user when the request carries a token that the dispatcher
accepts, else the client address (``REMOTE_ADDR``, after ``ProxyFix`` for the
configured number of trusted proxies). Whether a well-signed token still
speaks for its account (not revoked by a sign-out or a password change) is
known only once the dispatcher has read the account, so such a request is
counted then, through the :class:`PendingCharge` the dispatcher gets for it:
with the user's id, or with None for a token it refused, which then counts
against the address. A thief holding a revoked token spends the limits of the address it
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
is configured to fail closed (503). The middleware (``middleware.ratelimit``)
applies the address's limits before any work.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, cast

from limits import RateLimitItem, parse_many
from limits.strategies import RateLimiter

from service import auth
from service.config import BACKOFF_SECONDS, Settings
from service.errors import ApiError
from service.metrics import NO_METRICS, Metrics

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


@dataclass(eq=False)
class Limiter:
    """The configured limits on a shared counter storage: who a request counts against, and whether it may go on.

    Built once by ``create_app`` and handed to the two layers that count:
    ``middleware.ratelimit`` counts a request by its address before any work,
    unless it carries a well-signed token for a route that checks one
    (:meth:`defers`); the dispatcher counts that request once it has read the
    account, through the :class:`PendingCharge` it gets for it.

    :param scopes: the rate-limit scopes of a request (its route's ``limit_scopes``).
    :param strategy: a ``limits`` strategy bound to the shared storage.
    :param authenticates: whether the request's route checks a token.
    :param secret: the token secret, to key authenticated requests by user id.
    :param max_body: bodies larger than this are not read for the login email.
    :param metrics: told of each refusal (429 by scope).
    """

    strategy: RateLimiter
    limits: Limits
    _: KW_ONLY
    scopes: Callable[[dict[str, Any]], Sequence[str]]
    authenticates: Callable[[dict[str, Any]], bool]
    secret: str
    key_prefix: str = "conduit"
    headers_enabled: bool = True
    swallow_errors: bool = True
    max_body: int = 1024 * 1024
    metrics: Metrics = NO_METRICS
    _skip_until: float = field(default=0.0, init=False)

    def defers(self, environ: dict[str, Any]) -> bool:
        """Whether the request is counted by the dispatcher rather than by its address before any work.

        That is a request with a well-signed token on a route that checks it: whether the
        token still speaks for its account is known only once the account is read.
        """
        return bool(self.scopes(environ)) and self.authenticates(environ) and self._user_id(environ) is not None

    def pending(self, environ: dict[str, Any]) -> PendingCharge | None:
        """The count the dispatcher owes for a request it is to count (:meth:`defers`), or None."""
        return PendingCharge(self, environ, self.scopes(environ)) if self.defers(environ) else None

    def charge(self, environ: dict[str, Any], scopes: Sequence[str], user_id: int | None) -> list[tuple[str, str]]:
        """Count the request against ``user_id`` (None: its address).

        :returns: the ``X-RateLimit-*`` headers of the answer (none unless enabled).
        :raises ApiError: 429 over a limit; 503 when the storage fails and the limiter fails closed.
        """
        found = self._safely(self._check, environ, scopes, user_id) if time.monotonic() >= self._skip_until else _DOWN
        if found is _DOWN:
            if not self.swallow_errors:
                raise ApiError.unavailable("rate_limit")
            return []
        verdict = cast(_Verdict | None, found)
        headers = self._headers(verdict)
        if verdict is not None and verdict[0]:
            raise self._refusal(verdict, headers)
        return headers

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
            identifiers = (self.key_prefix, scope, who)
            if not self.strategy.hit(item, *identifiers):
                stats = self.strategy.get_window_stats(item, *identifiers)
                return True, item, 0, stats.reset_time, scope
            if self.headers_enabled:
                stats = self.strategy.get_window_stats(item, *identifiers)
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


class PendingCharge:
    """One request's count, owed by the dispatcher: charged once, with the user the token turned out to speak for."""

    def __init__(self, limiter: Limiter, environ: dict[str, Any], scopes: Sequence[str]) -> None:
        self._limiter = limiter
        self._environ = environ
        self._scopes = scopes
        self.charged = False
        #: The ``X-RateLimit-*`` headers the answer carries.
        self.headers: list[tuple[str, str]] = []

    def charge(self, user_id: int | None) -> None:
        """Count the request against ``user_id``, or against its address for a token refused (None).

        A request run again on a new database connection is counted once.

        :raises ApiError: 429 over a limit; 503 when the storage fails and the limiter fails closed.
        """
        if not self.charged:
            self.charged = True
            self.headers = self._limiter.charge(self._environ, self._scopes, user_id)

    def settle(self) -> None:
        """Count a request answered before its token was checked (a malformed one) against its address."""
        if not self.charged:
            self.charged = True
            with contextlib.suppress(ApiError):  # the answer is given; the count holds for the next request
                self._limiter.charge(self._environ, self._scopes, None)
