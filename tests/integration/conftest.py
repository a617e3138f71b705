"""A real engine per test (separate connections, real commits); the wheel installed once per run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from service import db as service_db
from tests.conftest import make_settings
from tests.integration.servers import Installed, install_wheel


@pytest.fixture
def real_engine(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Engine]:
    """A migrated database of its own, on the backend under test."""
    url = f"sqlite:///{tmp_path / 'real.db'}" if backend == "sqlite" else request.getfixturevalue("throwaway_pg_url")
    engine = service_db.make_engine(make_settings(database_url=url, instance_path=tmp_path))
    service_db.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The wheel in a fresh virtual environment, built once for every test that runs the installed package."""
    return install_wheel(tmp_path_factory.mktemp("wheel"))
