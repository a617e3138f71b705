"""Every WSGI host the docs name serves the installed wheel, and the same journey passes through each.

Each server runs from its PyPI package in the wheel's virtualenv (the extras
``servers`` and ``uwsgi``), with the configuration file docs/deploy.md quotes (docs/servers/),
on the embedded default database in an instance folder of its own. The time
from the server's start to its first answer is measured, since that is what a
host that starts processes on demand makes its first visitor wait.
"""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration import journey
from tests.integration.servers import ROOT, Installed, free_port

pytestmark = pytest.mark.slow

SERVERS = ROOT / "docs" / "servers"


@dataclass
class Served:
    base: str  # with the mount prefix, if any
    cold_start: float  # seconds from the server's start to its first answer


@contextmanager
def running(argv: list[str], installed: Installed, tmp: Path, prefix: str = "", **env: str) -> Iterator[Served]:
    """Start ``argv`` (in the unrelated folder, with the venv's programs first on the path); stop it after."""
    port = free_port()
    environ = installed.environ(
        PATH=f"{installed.bin}:{os.environ['PATH']}",
        CONDUIT_BIND=f"127.0.0.1:{port}",
        CONDUIT_INSTANCE_PATH=str(tmp / "instance"),
        CONDUIT_VENV=str(installed.bin.parent),
        **journey.SERVER_SETTINGS,
        **env,
    )
    log = tmp / "server.log"
    base = f"http://127.0.0.1:{port}{prefix}"
    started = time.monotonic()
    with log.open("wb") as sink:
        process = subprocess.Popen(argv, cwd=installed.elsewhere, env=environ, stdout=sink, stderr=sink)
    try:
        deadline = started + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{argv[0]} did not start:\n{log.read_text()}") from None
                time.sleep(0.02)
        yield Served(base, time.monotonic() - started)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]


def _server(name: str, installed: Installed) -> tuple[list[str], str]:
    """The command line for ``name``, and the prefix it mounts the app under."""
    if name == "gunicorn":
        return [str(installed.bin / "gunicorn"), "-c", "python:service.gunicorn_conf", "wsgi:application"], ""
    if name == "waitress":
        return ["sh", str(SERVERS / "waitress.sh")], "/conduit"
    if name == "granian":
        return ["sh", str(SERVERS / "granian.sh")], ""
    if name == "uwsgi":
        return [str(installed.bin / "uwsgi"), "--ini", str(SERVERS / "uwsgi.ini")], ""
    raise ValueError(name)


@pytest.mark.parametrize("name", ["gunicorn", "waitress", "granian", "uwsgi"])
def test_the_journey_passes_through_each_server(name: str, installed: Installed, tmp_path: Path) -> None:
    argv, prefix = _server(name, installed)
    with running(argv, installed, tmp_path, prefix, CONDUIT_WORKERS="2") as served:
        seen = journey.run(served.base)

    print(f"\n[servers] {name}: cold start to first answer {served.cold_start:.2f} s")  # noqa: T201 - closing note
    assert seen["slug"]


@pytest.mark.parametrize("path", sorted(SERVERS.iterdir()), ids=lambda path: path.name)
def test_the_deployment_guide_quotes_each_server_file_as_the_test_runs_it(path: Path) -> None:
    guide = (ROOT / "docs" / "deploy.md").read_text()

    assert path.read_text() in guide
