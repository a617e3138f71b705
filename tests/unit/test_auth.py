"""Passwords and tokens, with an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from service import auth
from service.errors import ApiError

SECRET = "unit-secret-unit-secret-unit-secret-0123"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_hash_password_is_argon2id_and_verifies() -> None:
    hashed = auth.hash_password("hunter2hunter2")

    assert hashed.startswith("$argon2id$")
    assert auth.check_password(hashed, "hunter2hunter2")
    assert not auth.check_password(hashed, "hunter3hunter3")


def test_check_password_without_a_user_is_false_even_for_the_dummy_password() -> None:
    assert not auth.check_password(None, "dummy password for unknown accounts")


def test_check_password_with_a_corrupt_hash_is_false() -> None:
    assert not auth.check_password("not a hash", "whatever")


def test_token_round_trips_the_user_id() -> None:
    token = auth.issue_token(42, SECRET, 60, now=NOW)

    assert auth.read_token(token, SECRET, now=NOW + timedelta(seconds=59)) == 42


def test_token_expires_after_its_lifetime() -> None:
    token = auth.issue_token(42, SECRET, 60, now=NOW)

    with pytest.raises(ApiError) as caught:
        auth.read_token(token, SECRET, now=NOW + timedelta(seconds=60))

    assert caught.value.messages == {"token": ["has expired"]}


def test_token_signed_with_another_secret_is_invalid() -> None:
    token = auth.issue_token(42, "other-secret-other-secret-other-secret", 60)

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
