"""Every WSGI host the docs name serves the installed wheel, and the same journey passes through each.

Each server runs from its PyPI package in the wheel's virtualenv (the extras
``servers`` and ``uwsgi``), with the configuration file docs/deploy.md quotes (docs/servers/),
on the embedded default database in an instance folder of its own. The time
from the server's start to its first answer is measured, since that is what a
host that starts processes on demand makes its first visitor wait.
"""

from __future__ import annotations

import functools
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import unavailable
from tests.integration import journey
from tests.integration.servers import ROOT, Installed, free_port, install_wheel, require_binary, stop
from tests.integration.test_docs_browser import CHROMIUM_ARGS, try_it_out_on_get_tags

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
        CONDUIT_METRICS_DIR=str(tmp / "metrics"),
        **journey.SERVER_SETTINGS,
        **env,
    )
    log = tmp / "server.log"
    base = f"http://127.0.0.1:{port}{prefix}"
    started = time.monotonic()
    with log.open("wb") as sink:
        process = subprocess.Popen(argv, cwd=installed.elsewhere, env=environ, stdout=sink, stderr=sink)
    try:
        _until_healthy(base, process, started + 60, lambda: f"{argv[0]} did not start:\n{log.read_text()}")
        yield Served(base, time.monotonic() - started)
    finally:
        stop(process)
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]


def _apache_failed(run: Path) -> str:
    logs = (run / "apache2.out", run / "error.log")
    return "apache2 did not start:\n" + "\n".join(path.read_text() for path in logs if path.exists())


def _until_healthy(base: str, process: subprocess.Popen[bytes], deadline: float, failed: Callable[[], str]) -> None:
    """Poll ``base``/healthz until it answers; raise with ``failed()`` if the process exits or time runs out."""
    while True:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=10):
                return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(failed()) from None
            time.sleep(0.02)


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


#: What a distribution's apache2.conf supplies around docs/servers/apache-mod_wsgi.conf, in a private folder.
_HTTPD_CONF = """
ServerName localhost
Listen {listen}
PidFile {run}/httpd.pid
DefaultRuntimeDir {run}
Mutex file:{run} default
ErrorLog {run}/error.log
LogLevel warn
User www-data
Group www-data
LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule alias_module /usr/lib/apache2/modules/mod_alias.so
Include {site}
"""


@contextmanager
def apache_serving(site: str, httpd: str = "") -> Iterator[Served]:
    """Debian's Apache with ``site`` (a file of docs/servers/), the wheel in a virtualenv of Debian's python3.

    Apache's processes run as www-data, so the virtualenv, the application folder and the instance
    folder live in a folder of their own that www-data can read (pytest's are private).

    :param httpd: more lines for the main configuration (what the module's package would add).
    """
    apache2 = require_binary("apache2")
    shared = Path(tempfile.mkdtemp(prefix="conduit-apache-", dir="/tmp"))
    try:
        shared.chmod(0o755)
        installed = install_wheel(shared, extras="", python="/usr/bin/python3")
        instance, run, app_root, metrics = shared / "instance", shared / "run", shared / "app", shared / "metrics"
        for folder in (instance, run, app_root, app_root / "public", metrics):
            folder.mkdir(mode=0o755)
        shutil.copy(SERVERS / "passenger_wsgi.py", app_root / "passenger_wsgi.py")
        owner = pwd.getpwnam("www-data")
        for writable in (instance, metrics):
            os.chown(writable, owner.pw_uid, owner.pw_gid)
        port = free_port()
        conf = run / "httpd.conf"
        conf.write_text(
            _HTTPD_CONF.format(listen=f"127.0.0.1:{port}", run=run, site=SERVERS / site) + httpd.format(run=run)
        )
        environ = installed.environ(
            CONDUIT_VENV=str(installed.bin.parent),
            CONDUIT_APP_ROOT=str(app_root),
            CONDUIT_INSTANCE_PATH=str(instance),
            CONDUIT_METRICS_DIR=str(metrics),
            **journey.SERVER_SETTINGS,
        )
        base = f"http://127.0.0.1:{port}/conduit"
        started = time.monotonic()
        with (run / "apache2.out").open("wb") as sink:
            argv = [apache2, "-f", str(conf), "-DFOREGROUND"]
            process = subprocess.Popen(argv, env=environ, stdout=sink, stderr=sink)
        try:
            _until_healthy(base, process, started + 90, functools.partial(_apache_failed, run))
            yield Served(base, time.monotonic() - started)
        finally:
            process.terminate()
            process.wait(timeout=30)
        errors = (run / "error.log").read_text()
        assert "Traceback" not in errors, errors[-3000:]
    finally:
        shutil.rmtree(shared, ignore_errors=True)


@pytest.fixture(scope="module")
def apache() -> Iterator[Served]:
    """mod_wsgi in daemon mode (docs/servers/apache-mod_wsgi.conf)."""
    if not Path("/usr/lib/apache2/modules/mod_wsgi.so").exists():
        unavailable("mod_wsgi is not installed (apt-get install libapache2-mod-wsgi-py3)")
    with apache_serving("apache-mod_wsgi.conf", "WSGISocketPrefix {run}/wsgi\n") as served:
        yield served


def test_the_journey_passes_through_apache_mod_wsgi_under_conduit(apache: Served) -> None:
    seen = journey.run(apache.base)

    print(f"\n[servers] apache mod_wsgi: cold start to first answer {apache.cold_start:.2f} s")  # noqa: T201
    assert seen["slug"]


def test_under_conduit_with_mod_wsgi_the_docs_try_it_out_reaches_the_api(apache: Served, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    executable = require_binary("chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            called: list[str] = []
            page.on("request", lambda request: called.append(request.url))
            page.goto(f"{apache.base}/docs")
            page.wait_for_selector(".opblock", timeout=30_000)
            answered = try_it_out_on_get_tags(page)
            page.screenshot(path=str(tmp_path / "swagger-ui-conduit.png"), full_page=True)
        finally:
            browser.close()

    assert answered.startswith("200")
    assert f"{apache.base}/api/tags" in called  # "Try it out" called the API under the mount
    assert all(url.startswith(apache.base) for url in called if url.startswith("http")), called


def test_the_journey_passes_through_passenger_under_apache_from_passenger_wsgi_py(tmp_path: Path) -> None:
    if not Path("/usr/lib/apache2/modules/mod_passenger.so").exists():
        unavailable("Passenger is not installed (apt-get install libapache2-mod-passenger)")
    # What a host adds around the site: whom the app runs as, and where Passenger keeps its files.
    httpd = "PassengerDefaultUser www-data\nPassengerDefaultGroup www-data\nPassengerInstanceRegistryDir {run}\n"
    with apache_serving("apache-passenger.conf", httpd) as served:
        seen = journey.run(served.base)

    print(f"\n[servers] passenger: cold start to first answer {served.cold_start:.2f} s")  # noqa: T201
    assert seen["slug"]
