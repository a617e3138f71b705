"""Real servers for multi-process tests: gunicorn with N sync workers, redis-server, an installed wheel."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import unavailable

ROOT = Path(__file__).resolve().parents[2]


def require_binary(name: str) -> str:
    """The path of the Debian package ``name``'s program; a skip locally, a failure in CI when missing."""
    binary = shutil.which(name)
    if binary is None:
        unavailable(f"{name} is not installed (apt-get install {name})")
    assert binary is not None
    return binary


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop(process: subprocess.Popen[bytes]) -> None:
    """Ask ``process`` to stop (SIGTERM); kill it if it has not within 30 seconds."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def _wait(check: Any, what: str, process: subprocess.Popen[bytes], log: Path, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if check():
                return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start:\n{log.read_text()}")
        time.sleep(0.1)


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any


@dataclass
class Gunicorn:
    """A running ``gunicorn -w N wsgi:application``."""

    base: str
    log: Path

    def call(self, method: str, path: str, body: Any = None, token: str | None = None) -> Reply:
        """One request on a new connection (so the kernel may hand it to any worker)."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Token {token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw, status, headers = response.read(), response.status, dict(response.headers)
        except urllib.error.HTTPError as error:
            raw, status, headers = error.read(), error.code, dict(error.headers)
            error.close()
        return Reply(status, headers, json.loads(raw) if raw else None)

    def worker_pids(self) -> set[str]:
        """Processes that logged a request line."""
        return set(re.findall(r"\[service\.access\] \[pid (\d+)\]", self.log.read_text()))


@contextmanager
def http_server(
    argv: list[str], base: str, log: Path, *, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> Iterator[None]:
    """Run ``argv`` until ``base``/healthz answers; stop it afterwards. Its output goes to ``log``."""
    with log.open("wb") as sink:
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=sink, stderr=sink)
    try:
        _wait(lambda: urllib.request.urlopen(f"{base}/healthz", timeout=2).close() is None, argv[0], process, log)
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextmanager
def gunicorn(tmp_path: Path, workers: int = 2, **settings: str) -> Iterator[Gunicorn]:
    """Start gunicorn on a free loopback port with ``CONDUIT_*`` settings; stop it afterwards."""
    port = free_port()
    env = {**os.environ, "CONDUIT_INSTANCE_PATH": str(tmp_path / "instance"), "CONDUIT_ENV": "development"}
    env.update({f"CONDUIT_{k.upper()}": v for k, v in settings.items()})
    server = Gunicorn(f"http://127.0.0.1:{port}", tmp_path / f"gunicorn-{port}.log")
    argv = [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}", "wsgi:application"]
    with http_server(argv, server.base, server.log, env=env):
        yield server


@dataclass
class Redis:
    """A private redis-server."""

    url: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


@contextmanager
def redis_server(tmp_path: Path) -> Iterator[Redis]:
    """Start ``redis-server`` on a free port, without persistence."""
    binary = require_binary("redis-server")
    port = free_port()
    log = tmp_path / f"redis-{port}.log"
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    with log.open("wb") as sink:
        process = subprocess.Popen(argv, stdout=sink, stderr=sink)
    import redis

    client = redis.Redis(port=port, socket_connect_timeout=0.5)
    node = Redis(f"redis://127.0.0.1:{port}/0", process)
    try:
        _wait(client.ping, "redis-server", process, log)
        client.close()
        yield node
    finally:
        if process.poll() is None:
            node.stop()


@contextmanager
def memcached_server(tmp_path: Path) -> Iterator[str]:
    """Start ``memcached`` on a free port; yields its ``memcached://`` URI."""
    binary = require_binary("memcached")
    port = free_port()
    log = tmp_path / f"memcached-{port}.log"
    argv = [binary, "-p", str(port), "-l", "127.0.0.1", "-U", "0"]
    if os.geteuid() == 0:
        argv += ["-u", "nobody"]  # memcached refuses to run as root
    with log.open("wb") as sink:
        process = subprocess.Popen(argv, stdout=sink, stderr=sink)

    def answers() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"version\r\n")
            return sock.recv(64).startswith(b"VERSION")

    try:
        _wait(answers, "memcached", process, log)
        yield f"memcached://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


@dataclass
class Installed:
    """A virtual environment with the wheel installed, and an unrelated folder to run in."""

    bin: Path
    elsewhere: Path

    def environ(self, **env: str) -> dict[str, str]:
        """This process's environment without anything that could point back at the checkout, plus ``env``."""
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("CONDUIT_", "PYTHON", "VIRTUAL_ENV"))}
        environ.update(env)
        return environ

    def run(self, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin / argv[0]), *argv[1:]],
            cwd=self.elsewhere,
            env=self.environ(**env),
            capture_output=True,
            text=True,
            timeout=300,
        )


def install_wheel(tmp: Path, extras: str = "servers,uwsgi", python: str = sys.executable) -> Installed:
    """Build the wheel from a copy of the checkout and install it in a new virtual environment under ``tmp``.

    :param extras: the wheel's extras to install with it (by default the WSGI servers test_wsgi_servers.py runs).
    :param python: the interpreter the virtual environment is made from.
    """
    # Built from a copy: setuptools' build/ folder in the checkout could carry stale modules into the wheel.
    source = tmp / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".*", "build", "dist", "*.egg-info", "instance"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp / "dist"), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp / "dist").glob("conduit_wsgi-*.whl")
    subprocess.run([python, "-m", "venv", str(tmp / "venv")], check=True)
    pip = [str(tmp / "venv" / "bin" / "pip"), "install", "-q", f"{wheel}[{extras}]" if extras else str(wheel)]
    subprocess.run(pip, check=True, capture_output=True)
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    return Installed(tmp / "venv" / "bin", elsewhere)


#: The configuration docs/deploy.md gives for nginx, run as it is (addresses substituted).
NGINX_SITE = ROOT / "docs" / "nginx-conduit.conf"
#: What a distribution's nginx.conf supplies around it, pointed at a private folder.
_NGINX_CONF = """
{user}
daemon off;
worker_processes {workers};
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {site};
}}
"""


@contextmanager
def nginx_server(
    tmp: Path, site: str, workers: int = 1, *, listen: str | None = None, inside: tuple[str, ...] = ()
) -> Iterator[str]:
    """nginx serving ``site`` (a server block, ``listen 80;`` moved); yields its base URL.

    :param listen: ``address:port`` to listen on (default: a free loopback port).
    :param inside: an argv prefix to run nginx with (``ip netns exec NS``); ``listen`` must then be reachable.
    """
    binary = require_binary("nginx")
    listen = listen or f"127.0.0.1:{free_port()}"
    (tmp / "site.conf").write_text(site.replace("listen 80;", f"listen {listen};"))
    # As root, nginx's workers would switch to "nobody", who cannot enter pytest's private temp folders.
    user = "user root;" if os.geteuid() == 0 else ""
    conf = tmp / "nginx.conf"
    conf.write_text(_NGINX_CONF.format(user=user, tmp=tmp, site=tmp / "site.conf", workers=workers))
    base = f"http://{listen}"
    with http_server([*inside, binary, "-c", str(conf), "-p", str(tmp)], base, tmp / "nginx.out"):
        yield base
