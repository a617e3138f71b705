"""Passwords and tokens: pure helpers with no database and no request.

Passwords are hashed with argon2id (argon2-cffi's defaults, RFC 9106 low-memory
profile). Tokens are HS256 JWTs carrying the user's immutable id as ``sub`` and
the user's token stamp, so that replacing the stamp revokes them all, and a
random ``jti`` (RFC 7519 §4.1.7), so that two tokens issued in the same second
are two tokens: the one that changed a password is kept, the other is not.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from service import environ_keys
from service.errors import ApiError
from service.models import MAX_INT

#: The only algorithm accepted when reading a token: never trust the header's ``alg``.
ALGORITHM = "HS256"
#: Schemes accepted in ``Authorization``: RealWorld's ``Token`` and the common ``Bearer``.
_SCHEMES = frozenset({"token", "bearer"})
#: Exactly the claims :func:`issue_token` writes.
_CLAIMS = frozenset({"sub", "stamp", "iat", "exp", "jti"})
#: The claims of a token issued before ``jti`` was (accepted until it expires: a release signs no one out).
_CLAIMS_BEFORE_JTI = _CLAIMS - {"jti"}
#: A token's ``jti``: 16 random bytes, URL-safe base64 without padding.
_JTI = re.compile(r"[A-Za-z0-9_-]{22}")
_ID = re.compile(r"[1-9][0-9]{0,9}")
#: A user's token stamp (``models.user.new_token_stamp``): 16 lower-case hex digits.
_STAMP = re.compile(r"[0-9a-f]{16}")


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


@dataclass(frozen=True)
class Claims:
    """What a valid token says: whose it is, the user's stamp then, and when it was issued.

    ``digest`` is the token's SHA-256: how the account remembers the one old
    token a password change keeps (``User.kept_token``).
    """

    user_id: int
    stamp: str
    issued_at: int
    digest: str

    def still_valid_for(self, stamp: str, created_at: datetime, kept_token: str | None = None) -> bool:
        """Whether the token still speaks for the account holding its id.

        The stamp changes with the password and at "sign out everywhere"; the
        token that changed the password is kept (``kept_token``). An account
        created after the token was issued is another account, even if a
        database handed it the same id.
        """
        current = hmac.compare_digest(self.stamp, stamp) or (
            kept_token is not None and hmac.compare_digest(self.digest, kept_token)
        )
        return current and self.issued_at >= int(created_at.timestamp())


def issue_token(user_id: int, stamp: str, secret: str, ttl: int, now: datetime | None = None) -> str:
    """Return a signed token for ``user_id`` (with the user's current ``stamp``), valid for ``ttl`` seconds."""
    issued = now or datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "stamp": stamp,
        "iat": issued,
        "exp": issued + timedelta(seconds=ttl),
        "jti": secrets.token_urlsafe(16),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def read_token(token: str, secret: str, now: datetime | None = None) -> Claims:
    """Return what a token says, if it is one this service could have issued and it has not expired.

    Beyond the signature and expiry, every claim must have exactly the shape
    :func:`issue_token` gives it: a claim we never issue (an id past the
    database's integers, a numeric string for ``exp``, an extra claim) is
    refused here instead of surprising a layer below.

    :raises ApiError: 401 "has expired" or "is invalid" (bad signature, wrong
        algorithm, missing or malformed claims).
    """
    claims, expires_at = _verified(token, secret)
    if expires_at <= (now.timestamp() if now is not None else time.time()):
        raise ApiError.unauthorized("has expired")
    return claims


@functools.lru_cache(maxsize=4096)
def _verified(token: str, secret: str) -> tuple[Claims, int]:
    """The claims of a token whose signature and shape are valid, and when it expires.

    Kept per process for the tokens seen lately: a client sends the same token
    with every request, and checking its signature and claims again would give
    the same answer (only expiry changes with time, and :func:`read_token`
    checks it on every use). A refused token raises and is not kept.
    """
    options = {"require": sorted(_CLAIMS_BEFORE_JTI), "verify_exp": False}
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options=options)  # type: ignore[arg-type]
    except jwt.InvalidTokenError:
        raise ApiError.unauthorized("is invalid") from None
    sub, stamp, iat, exp = claims.get("sub"), claims.get("stamp"), claims.get("iat"), claims.get("exp")
    jti = claims.get("jti", "-" * 22)
    if (
        set(claims) not in (_CLAIMS, _CLAIMS_BEFORE_JTI)
        or not isinstance(jti, str)
        or not _JTI.fullmatch(jti)
        or not isinstance(sub, str)
        or not _ID.fullmatch(sub)
        or int(sub) > MAX_INT
        or not isinstance(stamp, str)
        or not _STAMP.fullmatch(stamp)
        or type(iat) is not int
        or type(exp) is not int
        or not iat < exp
    ):
        raise ApiError.unauthorized("is invalid")
    return Claims(int(sub), stamp, iat, hashlib.sha256(token.encode()).hexdigest()), exp


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


def request_claims(environ: MutableMapping[str, Any], secret: str) -> Claims | None:
    """What the request's token says, decoded once per request and kept in the environ.

    The rate limiter (to key a request by its user) and the dispatcher (to
    authenticate it) both ask; the signature is checked only the first time.

    :returns: None when the request carries no token.
    :raises ApiError: 401 for a malformed header or an invalid or expired token.
    """
    found = environ.get(environ_keys.TOKEN_CLAIMS, _UNREAD)
    if found is _UNREAD:
        try:
            token = token_from_header(environ.get("HTTP_AUTHORIZATION"))
            found = read_token(token, secret) if token else None
        except ApiError as error:
            found = error
        environ[environ_keys.TOKEN_CLAIMS] = found
    if isinstance(found, ApiError):
        raise found
    return found  # type: ignore[no-any-return]


#: Marks "not decoded yet" in the environ (None means "no token").
_UNREAD = object()
