"""Whether this host is draining: told to stop, still serving, no longer ready.

A host told to stop answers ``/readyz`` with 503 at once, so that a load
balancer checking it takes it out of rotation, and keeps serving for
``CONDUIT_DRAIN_SECONDS`` while it does; only then does it stop accepting
connections and finish the requests in flight (``service.gunicorn_conf``).

The flag lives in one byte of anonymous shared memory, mapped when this module
is first imported. gunicorn's master imports it (through its configuration
module) before it forks, so the master sets the flag and every worker reads
the same byte. Under a server that never sets it, the host is never draining.
"""

from __future__ import annotations

import mmap

_FLAG = mmap.mmap(-1, 1)


def start_draining() -> None:
    """From now on, :func:`draining` is true in this process and every process forked from it."""
    _FLAG[0] = 1


def draining() -> bool:
    return _FLAG[0] == 1
