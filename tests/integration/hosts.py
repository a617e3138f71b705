"""Several hosts on one machine: Linux network namespaces joined by veth links.

Each role (an application host, PostgreSQL, Redis) runs in a namespace of its
own, and each pair of roles that talk gets a veth link of its own (a /30 in a
private /24 that nothing on the machine uses), so that one link can be cut
(``ip link set ... down``) while the others stay up. The test process stays
in the root namespace, joined to each namespace by a link: traffic only ever
goes to loopback and to the addresses created here.

Everything is removed on exit, even after a failure: every process in the
namespaces is killed, then the namespaces are deleted (which deletes the veth
pairs). Namespaces left behind by a run that was itself killed are removed by
the next one. Needs root (and ``iproute2``).
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import json
import os
import pwd
import random
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import unavailable

#: Namespaces of this suite are named ``conduit-<pid>-<role>``.
_PREFIX = "conduit-"


def _ip(*args: str, ns: str | None = None) -> str:
    argv = ["ip", *(["-n", ns] if ns else []), *args]
    return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=10).stdout


def pids_in(ns: str) -> list[int]:
    """Every process in ``ns``."""
    found = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True, timeout=10).stdout
    return [int(pid) for pid in found.split()]


def _remove_namespace(ns: str) -> None:
    for _ in range(50):
        pids = pids_in(ns)
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)


def _remove_leftovers() -> None:
    """Namespaces of runs whose process is gone (killed before it could clean up)."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10).stdout
    for name in re.findall(rf"^({_PREFIX}(\d+)-\S+)", listed, re.MULTILINE):
        ns, pid = name
        if not Path(f"/proc/{pid}").exists():
            _remove_namespace(ns)


def _unused_network() -> ipaddress.IPv4Network:
    """A /24 in 10.0.0.0/8 that no address or route of the machine touches."""
    used = _ip("-4", "addr") + _ip("-4", "route")
    taken = [ipaddress.ip_network(m, strict=False) for m in re.findall(r"(\d+\.\d+\.\d+\.\d+(?:/\d+)?)", used)]
    for _ in range(200):
        candidate = ipaddress.ip_network(f"10.{random.randint(64, 250)}.{random.randint(0, 255)}.0/24")
        if not any(candidate.overlaps(net) for net in taken):
            return candidate
    raise RuntimeError("no free private /24 found")


@dataclass
class Link:
    """A veth pair: ``near`` (root namespace, or a namespace) to ``far`` (a namespace)."""

    near: str
    far: str
    far_ns: str
    far_if: str

    def cut(self) -> None:
        """Take the far end down: nothing passes either way until :meth:`restore`."""
        _ip("link", "set", self.far_if, "down", ns=self.far_ns)

    def restore(self) -> None:
        _ip("link", "set", self.far_if, "up", ns=self.far_ns)


@dataclass
class Topology:
    """Namespaces, links and processes, all removed by :meth:`close`."""

    tmp: Path
    network: ipaddress.IPv4Network = field(default_factory=_unused_network)
    namespaces: list[str] = field(default_factory=list)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _links: int = 0

    def namespace(self, role: str) -> str:
        name = f"{_PREFIX}{os.getpid()}-{role}"
        subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True, timeout=10)
        self.namespaces.append(name)
        _ip("link", "set", "lo", "up", ns=name)
        return name

    def link(self, near_ns: str | None, far_ns: str) -> Link:
        """A new veth pair with a /30 of its own."""
        index = self._links
        self._links += 1
        near_if, far_if = f"c{os.getpid():x}l{index}a", f"c{os.getpid():x}l{index}b"
        near, far = (str(self.network.network_address + 4 * index + n) for n in (1, 2))
        where = ["netns", near_ns] if near_ns else []
        _ip("link", "add", near_if, *where, "type", "veth", "peer", "name", far_if, "netns", far_ns)
        for ns, name, address in ((near_ns, near_if, near), (far_ns, far_if, far)):
            _ip("addr", "add", f"{address}/30", "dev", name, ns=ns)
            _ip("link", "set", name, "up", ns=ns)
        return Link(near, far, far_ns, far_if)

    def spawn(self, ns: str, argv: list[str], log: Path, **options: Any) -> subprocess.Popen[bytes]:
        """``argv`` inside ``ns``, its output to ``log``."""
        with log.open("ab") as sink:
            process = subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdout=sink, stderr=sink, **options)
        self.processes.append(process)
        return process

    def kill_all_in(self, ns: str) -> None:
        """``kill -9`` every process in ``ns`` (a host dying: master and workers at once)."""
        killed = set(pids_in(ns))
        for pid in killed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for process in self.processes:
            if process.pid in killed:
                process.wait(timeout=10)  # reaped, so no zombie keeps its pid

    def close(self) -> None:
        for ns in reversed(self.namespaces):
            _remove_namespace(ns)
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)


@contextlib.contextmanager
def topology(tmp: Path) -> Iterator[Topology]:
    """An empty topology, removed with everything in it when the block ends."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        unavailable("network namespaces need root and iproute2")
    _remove_leftovers()
    made = Topology(tmp)
    try:
        yield made
    finally:
        made.close()


def wait_until(check: Any, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if check():
                return
        except Exception:  # not up yet: refused, reset, a client library's own error
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready after {seconds} s")
        time.sleep(0.1)


@dataclass
class PostgresNode:
    """PostgreSQL in its namespace, run as the ``postgres`` user from a folder it owns."""

    topo: Topology
    ns: str
    bindir: Path
    datadir: Path
    port: int = 5432

    def _ctl(self, *args: str) -> None:
        argv = ["ip", "netns", "exec", self.ns, "runuser", "-u", "postgres", "--", str(self.bindir / "pg_ctl")]
        subprocess.run([*argv, "-D", str(self.datadir), *args], check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.datadir} -c listen_addresses=* -c fsync=off -c max_connections=300"
        self._ctl("-w", "-l", str(self.datadir / "log"), "-o", options, "start")

    def stop(self) -> None:
        self._ctl("-m", "fast", "-w", "stop")

    def stop_now(self) -> None:
        """Stop as a crash would: sessions cut, nothing written out."""
        self._ctl("-m", "immediate", "-w", "stop")

    def promote(self) -> None:
        """Make a standby the primary (``pg_ctl promote``), waiting until it accepts writes."""
        self._ctl("-w", "promote")


def postgres(topo: Topology, ns: str, bindir: Path) -> PostgresNode:
    """initdb (trusting connections from the links), then start the server in ``ns``."""
    datadir = Path(tempfile.mkdtemp(prefix="conduit-pg-", dir="/tmp"))
    owner = pwd.getpwnam("postgres")
    os.chown(datadir, owner.pw_uid, owner.pw_gid)
    initdb = ["runuser", "-u", "postgres", "--", str(bindir / "initdb"), "-D", str(datadir), "-A", "trust"]
    subprocess.run([*initdb, "-U", "postgres"], check=True, capture_output=True, timeout=120)
    with (datadir / "pg_hba.conf").open("a") as hba:
        hba.write(f"host all all {topo.network} trust\n")
    node = PostgresNode(topo, ns, bindir, datadir)
    node.start()
    return node


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any
    seconds: float


def call(
    address: str,
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> Reply:
    """One request on a new connection (so the kernel may hand it to any worker)."""
    host, port = address.rsplit(":", 1)
    sent = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        sent["Authorization"] = f"Token {token}"
    sent.update(headers or {})
    started = time.monotonic()
    connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        connection.request(method, path, json.dumps(body) if body is not None else None, sent)
        response = connection.getresponse()
        raw = response.read()
        reply_headers = dict(response.getheaders())
        status = response.status
    finally:
        connection.close()
    parsed = None
    if raw:
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = raw.decode(errors="replace")
    return Reply(status, reply_headers, parsed, time.monotonic() - started)
