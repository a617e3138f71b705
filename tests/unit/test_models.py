"""Model helpers: an update's time stamp always moves forward on the wire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from service.models import later_than


def test_later_than_moves_forward_on_the_wire_within_one_millisecond() -> None:
    created = datetime(2026, 1, 1, 0, 0, 0, 500, tzinfo=UTC)

    updated = later_than(created, now=created + timedelta(microseconds=100))

    assert updated > created
    assert updated.microsecond // 1000 > created.microsecond // 1000


def test_later_than_keeps_a_clock_that_is_already_ahead() -> None:
    created = datetime(2026, 1, 1, tzinfo=UTC)
    now = created + timedelta(seconds=5)

    assert later_than(created, now=now) == now
