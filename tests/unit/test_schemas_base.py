"""The wire conventions every schema shares: timestamps and camelCase names."""

from __future__ import annotations

from datetime import UTC, datetime

from marshmallow import Schema

from schemas.base import WireDateTime, camelcase


class Stamped(Schema):
    at = WireDateTime()


def test_wire_datetime_is_utc_with_milliseconds_and_z() -> None:
    value = datetime(2026, 1, 2, 3, 4, 5, 678999, tzinfo=UTC)

    assert Stamped().dump({"at": value}) == {"at": "2026-01-02T03:04:05.678Z"}


def test_camelcase_converts_snake_case() -> None:
    assert camelcase("favorites_count") == "favoritesCount"
    assert camelcase("tag_list") == "tagList"
    assert camelcase("body") == "body"
