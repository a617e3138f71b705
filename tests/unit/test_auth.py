"""Passwords and tokens, with an injected clock."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from service import auth
from service.errors import ApiError

SECRET = "unit-secret-unit-secret-unit-secret-0123"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
STAMP = "0123456789abcdef"


def test_hash_password_is_argon2id_and_verifies() -> None:
    hashed = auth.hash_password("hunter2hunter2")

    assert hashed.startswith("$argon2id$")
    assert auth.check_password(hashed, "hunter2hunter2")
    assert not auth.check_password(hashed, "hunter3hunter3")


def test_check_password_without_a_user_is_false_even_for_the_dummy_password() -> None:
    assert not auth.check_password(None, "dummy password for unknown accounts")


def test_check_password_with_a_corrupt_hash_is_false() -> None:
    assert not auth.check_password("not a hash", "whatever")


def test_token_round_trips_the_user_id_stamp_and_issue_time() -> None:
    token = auth.issue_token(42, STAMP, SECRET, 60, now=NOW)

    claims = auth.read_token(token, SECRET, now=NOW + timedelta(seconds=59))

    assert claims == auth.Claims(42, STAMP, int(NOW.timestamp()), hashlib.sha256(token.encode()).hexdigest())


def test_token_expires_after_its_lifetime() -> None:
    token = auth.issue_token(42, STAMP, SECRET, 60, now=NOW)

    with pytest.raises(ApiError) as caught:
        auth.read_token(token, SECRET, now=NOW + timedelta(seconds=60))

    assert caught.value.messages == {"token": ["has expired"]}


def test_token_signed_with_another_secret_is_invalid() -> None:
    token = auth.issue_token(42, STAMP, "other-secret-other-secret-other-secret", 60)

    with pytest.raises(ApiError) as caught:
        auth.read_token(token, SECRET)

    assert caught.value.status == 401 and caught.value.messages == {"token": ["is invalid"]}


@pytest.mark.parametrize(
    ("header", "token"),
    [(None, None), ("", None), ("Token abc", "abc"), ("Bearer abc", "abc"), ("token  abc ", "abc")],
)
def test_token_from_header_accepts_token_and_bearer(header: str | None, token: str | None) -> None:
    assert auth.token_from_header(header) == token


@pytest.mark.parametrize("header", ["abc", "Basic abc", "Token", "Token a b"])
def test_token_from_header_refuses_other_shapes(header: str) -> None:
    with pytest.raises(ApiError):
        auth.token_from_header(header)


def _signed(**claims: object) -> str:
    base: dict[str, object] = {
        "sub": "42",
        "stamp": STAMP,
        "iat": int(NOW.timestamp()),
        "exp": int(NOW.timestamp()) + 60,
        "jti": "A" * 21 + "_",
    }
    base.update(claims)
    return jwt.encode({k: v for k, v in base.items() if v is not None}, SECRET, algorithm="HS256")


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": str(2**31)},  # past the database's integer ids (was a 500 on PostgreSQL)
        {"sub": "99999999999999999"},
        {"sub": "0"},
        {"sub": "042"},
        {"sub": 42},
        {"sub": "-1"},
        {"sub": "4 2"},
        {"exp": str(int(NOW.timestamp()) + 60)},  # a numeric string PyJWT would convert
        {"iat": str(int(NOW.timestamp()))},
        {"exp": float(NOW.timestamp() + 60)},
        {"exp": True},
        {"iat": int(NOW.timestamp()) + 60},  # issued no earlier than it expires
        {"stamp": None},
        {"stamp": "0123456789ABCDEF"},
        {"stamp": ["0123456789abcdef"]},
        {"admin": True},  # a claim we never issue
        {"jti": "A" * 21},
        {"jti": "A" * 21 + "="},
        {"jti": "A" * 23},
        {"jti": 12345},
        {"jti": ["A" * 22]},
    ],
)
def test_a_signed_token_with_a_claim_we_never_issue_is_invalid(claims: dict[str, object]) -> None:
    with pytest.raises(ApiError) as caught:
        auth.read_token(_signed(**claims), SECRET, now=NOW)

    assert caught.value.status == 401 and caught.value.messages == {"token": ["is invalid"]}


def test_two_tokens_issued_in_the_same_second_are_two_tokens() -> None:
    first, second = (auth.issue_token(42, STAMP, SECRET, 60, now=NOW) for _ in range(2))

    assert first != second
    assert auth.read_token(first, SECRET, now=NOW).digest != auth.read_token(second, SECRET, now=NOW).digest
    assert (
        jwt.decode(first, SECRET, algorithms=["HS256"], options={"verify_exp": False})["jti"]
        != jwt.decode(second, SECRET, algorithms=["HS256"], options={"verify_exp": False})["jti"]
    )


def test_a_token_issued_before_tokens_had_a_jti_is_still_read() -> None:
    # A release does not sign everyone out: the tokens it finds in use have no jti until they expire.
    assert auth.read_token(_signed(jti=None), SECRET, now=NOW).user_id == 42


def test_a_token_is_valid_only_with_the_stamp_it_carries() -> None:
    claims = auth.read_token(_signed(), SECRET, now=NOW)

    assert claims.still_valid_for(STAMP, NOW - timedelta(days=1))
    assert not claims.still_valid_for("fedcba9876543210", NOW - timedelta(days=1))


def test_a_token_issued_before_the_account_was_created_is_not_for_that_account() -> None:
    claims = auth.read_token(_signed(), SECRET, now=NOW)

    assert claims.still_valid_for(STAMP, NOW + timedelta(milliseconds=999))  # same second: the registration token
    assert not claims.still_valid_for(STAMP, NOW + timedelta(seconds=1))


def test_a_token_read_before_keeps_expiring_on_time() -> None:
    token = auth.issue_token(7, STAMP, SECRET, 60, now=NOW)
    assert auth.read_token(token, SECRET, now=NOW).user_id == 7  # verified, and kept by this process

    with pytest.raises(ApiError) as expired:
        auth.read_token(token, SECRET, now=NOW + timedelta(seconds=60))

    assert expired.value.messages == {"token": ["has expired"]}


def test_a_kept_token_does_not_vouch_for_another_secret_or_a_tampered_copy() -> None:
    token = auth.issue_token(7, STAMP, SECRET, 60, now=NOW)
    auth.read_token(token, SECRET, now=NOW)
    head, payload, signature = token.split(".")
    tampered = f"{head}.{payload}.{signature[:-2]}{'AA' if not signature.endswith('AA') else 'BB'}"

    for other, secret in ((token, "another-secret-another-secret-0123456789"), (tampered, SECRET)):
        with pytest.raises(ApiError) as refused:
            auth.read_token(other, secret, now=NOW)
        assert refused.value.messages == {"token": ["is invalid"]}
