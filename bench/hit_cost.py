"""CPU microseconds of one anonymous cache hit through the whole WSGI stack, in-process.

No server and no network: the request log, CORS, docs, body, cache and
dispatcher layers of ``create_app``, on a SQLite database of 1 000 articles
(``tests/scale.py``) and the host-local cache store (or the one named), so the
figure is what the service itself adds to a hit: a page of 20 articles shows
about 40 things a write could change. ``CHECKOUT`` serves another checkout (a worktree of an older commit)
for a before/after comparison; run each a few times, alternating.

Usage: python bench/hit_cost.py [CHECKOUT] [CACHE_URL]
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
checkout = sys.argv[1] if len(sys.argv) > 1 else str(ROOT)
sys.path.insert(0, checkout)

from werkzeug.test import EnvironBuilder  # noqa: E402

from service.app import create_app  # noqa: E402
from service.config import Settings  # noqa: E402

HITS = 4000


def main() -> None:
    folder = Path(tempfile.mkdtemp())
    settings = Settings(
        env="testing",
        secret_key="x" * 48,
        database_url=f"sqlite:///{folder}/c.db",
        instance_path=folder,
        ratelimit_enabled=False,
        cache_url=sys.argv[2] if len(sys.argv) > 2 else "sqlitefile",
        cache_min_uses=1,
        auto_migrate=True,
    )
    app = create_app(settings)
    logging.getLogger("service").setLevel(logging.WARNING)
    # This checkout's filler, whichever checkout is measured (an older one has no tests/scale.py).
    spec = importlib.util.spec_from_file_location("scale_helpers", ROOT / "tests" / "scale.py")
    assert spec is not None and spec.loader is not None
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)
    from sqlalchemy import create_engine

    engine = create_engine(settings.database_url)
    with engine.begin() as connection:
        helpers.fill(connection, 1000)
    engine.dispose()

    def call(environ: dict[str, Any]) -> None:
        body = app(dict(environ), lambda status, headers, exc_info=None: None)
        b"".join(body)
        getattr(body, "close", lambda: None)()

    # A cache shared by hosts is read only once this process has delivered the journal (about 0.5 s), and its
    # first misses open the Redis connections the delivery thread and the requests keep using.
    for _ in range(3):
        call(EnvironBuilder("/api/tags", environ_base={"REMOTE_ADDR": "127.0.0.1"}).get_environ())
        time.sleep(0.3)
    for path, query in (
        ("/api/articles", ""),
        ("/api/articles", "limit=10&offset=0"),
        ("/api/articles/s7", ""),
        ("/api/tags", ""),
    ):
        environ = EnvironBuilder(path, query_string=query, environ_base={"REMOTE_ADDR": "127.0.0.1"}).get_environ()
        for _ in range(3):
            call(environ)  # stored
        started = time.process_time()
        for _ in range(HITS):
            call(environ)
        print(f"{path}?{query}: {(time.process_time() - started) / HITS * 1e6:.1f} µs a hit")


if __name__ == "__main__":
    main()
