"""How long the kept-totals migration takes on a big live database, and how long writes wait meanwhile.

A private PostgreSQL, our schema at the revision before (``5e1f0c2a7b93``)
filled by SQL with N articles (``tests/scale.py``), then ``alembic upgrade
head`` while a writer keeps doing what the service's writes do (publish an
article with two tags, favorite, unfavorite, delete; a transaction each). It
prints the migration's duration and the writes' count, p50, p99 and maximum.
The suite runs the same at 100 000 articles (tests/migrations/test_live_totals_migration.py).

Usage: python bench/live_migration.py [--articles 1000000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

from alembic import command
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service import db as service_db  # noqa: E402
from service.ops import health  # noqa: E402
from tests import pg, scale  # noqa: E402
from tests.migrations.test_live_totals_migration import BEFORE, _writes  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=1_000_000)
    args = parser.parse_args()
    binaries = pg.bindir()
    if binaries is None:
        sys.exit("PostgreSQL's server binaries are needed (apt-get install postgresql-15)")
    with pg.private_cluster(binaries) as cluster:
        config = service_db.alembic_config(cluster.url)
        config.attributes["configure_logging"] = False
        command.upgrade(config, BEFORE)
        engine = create_engine(cluster.url)
        started = time.perf_counter()
        with engine.begin() as connection:
            scale.fill(connection, args.articles)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE")
        print(f"{args.articles:,} articles filled in {time.perf_counter() - started:.0f} s", flush=True)
        stop, took, failures = threading.Event(), [], []  # type: ignore[var-annotated]
        writer = threading.Thread(target=_writes, args=(engine, stop, took, failures))
        writer.start()
        time.sleep(1)
        before = len(took)
        started = time.perf_counter()
        command.upgrade(config, "head")
        migrated = time.perf_counter() - started
        during = took[before:]
        time.sleep(1)
        stop.set()
        writer.join()
        with Session(engine) as session:
            wrong = health.totals_mismatches(session)
            undated = session.execute(text("SELECT count(*) FROM article_tags WHERE created_at IS NULL")).scalar()
        engine.dispose()
    print(f"migration: {migrated:.1f} s; writes during it: {len(during)}, failed: {len(failures)}")
    if during:
        ordered = sorted(during)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        print(
            f"write transaction p50 {statistics.median(during) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms,"
            f" max {max(during) * 1000:.0f} ms"
        )
    print(f"kept totals: {'; '.join(wrong) or 'equal to real counts'}; article_tags without a date: {undated}")


if __name__ == "__main__":
    main()
