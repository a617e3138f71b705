"""A real engine per test (separate connections, real commits) for concurrency tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from service import db as service_db
from tests.conftest import make_settings


@pytest.fixture
def real_engine(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Engine]:
    """A migrated database of its own, on the backend under test."""
    url = f"sqlite:///{tmp_path / 'real.db'}" if backend == "sqlite" else request.getfixturevalue("throwaway_pg_url")
    engine = service_db.make_engine(make_settings(database_url=url, instance_path=tmp_path))
    service_db.upgrade(engine)
    yield engine
    engine.dispose()
