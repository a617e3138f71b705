"""The service as operators run it: real gunicorn, two sync workers, the curl journey."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TEST_SECRET

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """``gunicorn -w 2 wsgi:application`` on loopback; yields the API base URL."""
    env = {**os.environ, "CONDUIT_INSTANCE_PATH": str(tmp_path / "instance"), "CONDUIT_ENV": "development"}
    if backend == "pg":
        url = request.getfixturevalue("throwaway_pg_url")
        env.update(CONDUIT_DATABASE_URL=url, CONDUIT_ENV="production", CONDUIT_SECRET_KEY=TEST_SECRET)
        subprocess.run(
            [sys.executable, "-m", "alembic", "upgrade", "head"], cwd=ROOT, env=env, check=True, capture_output=True
        )
    port = _free_port()
    gunicorn = [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", "wsgi:application"]
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(gunicorn, cwd=ROOT, env=env, stdout=sink, stderr=sink)
    base = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/tags", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(log.read_text()) from None
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_full_client_journey_under_gunicorn_with_two_workers(server: str) -> None:
    result = subprocess.run(
        ["bash", str(ROOT / "bench" / "journey.sh"), server], capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "journey passed" in result.stdout
