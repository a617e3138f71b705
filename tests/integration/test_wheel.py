"""The service as a production host gets it: a wheel in a fresh virtual environment, run from elsewhere.

Nothing of the checkout is on the path: the commands must find the migrations
and everything else inside the installed distribution.
"""

from __future__ import annotations

import configparser
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.servers import ROOT, Installed, free_port, http_server

pytestmark = pytest.mark.slow


def test_the_installed_commands_migrate_report_and_check_a_new_sqlite_database(
    installed: Installed, tmp_path: Path
) -> None:
    env = {"CONDUIT_INSTANCE_PATH": str(tmp_path / "instance")}

    before = installed.run("conduit", "check", **env)
    upgraded = installed.run("conduit", "db", "upgrade", **env)
    current = installed.run("conduit", "db", "current", **env)
    after = installed.run("conduit", "check", **env)

    assert before.returncode == 1 and "FAIL  migrations: at None" in before.stderr
    assert upgraded.returncode == 0, upgraded.stderr
    assert "(head)" in current.stdout, current.stderr
    assert after.returncode == 0, after.stdout + after.stderr


@pytest.mark.pg
def test_the_installed_commands_migrate_postgresql(installed: Installed, throwaway_pg_url: str, tmp_path: Path) -> None:
    env = {"CONDUIT_DATABASE_URL": throwaway_pg_url, "CONDUIT_INSTANCE_PATH": str(tmp_path / "instance")}

    upgraded = installed.run("conduit", "db", "upgrade", **env)
    after = installed.run("conduit", "check", **env)

    assert upgraded.returncode == 0, upgraded.stderr
    assert after.returncode == 0 and "ok    migrations" in after.stdout, after.stdout + after.stderr


@pytest.fixture
def served(installed: Installed, tmp_path: Path) -> Iterator[str]:
    """``gunicorn wsgi:application`` from the venv, in the unrelated folder, on a new instance folder."""
    port = free_port()
    environ = installed.environ(CONDUIT_INSTANCE_PATH=str(tmp_path / "instance"))
    argv = [str(installed.bin / "gunicorn"), "-w", "2", "-b", f"127.0.0.1:{port}", "wsgi:application"]
    base = f"http://127.0.0.1:{port}"
    with http_server(argv, base, tmp_path / "gunicorn.log", cwd=installed.elsewhere, env=environ):
        yield base


def test_gunicorn_serves_the_installed_wsgi_module_migrating_sqlite_on_first_start(served: str) -> None:
    with urllib.request.urlopen(f"{served}/readyz", timeout=10) as ready:
        readiness = ready.read()
    with urllib.request.urlopen(f"{served}/api/tags", timeout=10) as tags:
        body = tags.read()

    assert b'"migrations":"ok"' in readiness
    assert body == b'{"tags":[]}'


def test_setup_cfg_lists_every_package_of_the_tree() -> None:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    listed = set(config["options"]["packages"].split())

    in_tree = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("service", "schemas")
        for init in (ROOT / top).rglob("__init__.py")
    }

    assert listed == in_tree | {"service.migrations", "service.migrations.versions"}
