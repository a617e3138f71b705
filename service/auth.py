"""Passwords and tokens: pure helpers with no database and no request.

Passwords are hashed with argon2id (argon2-cffi's defaults, RFC 9106 low-memory
profile). Tokens are HS256 JWTs carrying the user's immutable id as ``sub``.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from service.errors import ApiError

#: The only algorithm accepted when reading a token: never trust the header's ``alg``.
ALGORITHM = "HS256"
#: Schemes accepted in ``Authorization``: RealWorld's ``Token`` and the common ``Bearer``.
_SCHEMES = frozenset({"token", "bearer"})


@functools.cache
def _hasher() -> PasswordHasher:
    return PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    # Computed on first use, not at import: verifying an unknown email against
    # it costs the same time as a real check, so timing reveals no accounts.
    return _hasher().hash("dummy password for unknown accounts")


def hash_password(password: str) -> str:
    """Return the argon2id hash of ``password``."""
    return _hasher().hash(password)


def check_password(password_hash: str | None, password: str) -> bool:
    """Tell whether ``password`` matches ``password_hash``.

    With ``password_hash=None`` (no such user) a dummy hash is verified anyway,
    so that a wrong email and a wrong password take the same time.
    """
    try:
        return _hasher().verify(password_hash or _dummy_hash(), password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Tell whether a stored hash was made with weaker parameters than today's."""
    return _hasher().check_needs_rehash(password_hash)


def issue_token(user_id: int, secret: str, ttl: int, now: datetime | None = None) -> str:
    """Return a signed token for ``user_id`` valid for ``ttl`` seconds from ``now``."""
    issued = now or datetime.now(UTC)
    claims = {"sub": str(user_id), "iat": issued, "exp": issued + timedelta(seconds=ttl)}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def read_token(token: str, secret: str, now: datetime | None = None) -> int:
    """Return the user id a token was issued for.

    :raises ApiError: 401 "has expired" or "is invalid" (bad signature, wrong
        algorithm, missing claims, malformed).
    """
    options = {"require": ["sub", "iat", "exp"], "verify_exp": now is None}
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options=options)  # type: ignore[arg-type]
    except jwt.ExpiredSignatureError:
        raise ApiError.unauthorized("has expired") from None
    except jwt.InvalidTokenError:
        raise ApiError.unauthorized("is invalid") from None
    if now is not None and int(claims["exp"]) <= int(now.timestamp()):
        # An injected clock (tests) replaces PyJWT's own expiry check.
        raise ApiError.unauthorized("has expired")
    sub = claims["sub"]
    if not isinstance(sub, str) or not sub.isdecimal() or len(sub) > 18:
        raise ApiError.unauthorized("is invalid")
    return int(sub)


def token_from_header(header: str | None) -> str | None:
    """Extract the token from ``Authorization: Token <jwt>`` (or ``Bearer``).

    :returns: the token, or None when no header was sent.
    :raises ApiError: 401 "is invalid" for any other shape of header.
    """
    if header is None or not header.strip():
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() not in _SCHEMES or not token or " " in token:
        raise ApiError.unauthorized("is invalid")
    return token
