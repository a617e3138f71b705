"""gunicorn's sync worker, told to stop, serves the connections already queued before it exits.

When gunicorn stops, the master closes its copy of the listening socket and
tells each worker to finish. A stock sync worker finishes the request in hand
and exits; connections that the kernel had already accepted for the socket but
no worker had taken yet are then reset by the kernel when the last copy of the
socket closes. Behind a load balancer those connections carry requests it has
already sent, so it cannot know whether they were applied and must not retry a
``POST``: the client gets a 502. This worker takes every queued connection and
serves it, then closes its copy of the socket at once, before the process
winds down (which takes a tenth of a second). Once the last copy is closed,
a new connection is refused before any request was sent, and the balancer
retries it on another host.
"""

from __future__ import annotations

import errno
import time

from gunicorn.workers.sync import SyncWorker  # type: ignore[import-untyped]  # gunicorn ships no types


class DrainingSyncWorker(SyncWorker):  # type: ignore[misc]
    """``worker_class = "service.gunicorn_worker.DrainingSyncWorker"``."""

    def run(self) -> None:
        super().run()
        # Bounded: a queue that never empties must not hold the worker until the master kills it mid-request.
        deadline = time.monotonic() + self.cfg.graceful_timeout / 2
        for listener in self.sockets:
            while time.monotonic() < deadline:
                try:
                    self.accept(listener)  # the listener is non-blocking: raises once the queue is empty
                except OSError as exc:
                    if exc.errno == errno.ECONNABORTED:
                        continue
                    break
            # At once: the process takes a while longer to exit, and connections queued meanwhile would be reset.
            listener.close()
