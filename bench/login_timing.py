"""Login must not reveal which emails have accounts: time both kinds of failure.

Runs in-process on a temporary SQLite database, interleaving the two cases so
that machine noise hits both alike, and prints medians and their ratio.
Usage: python bench/login_timing.py [ROUNDS]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from webtest import TestApp

from service.app import create_app
from service.config import Settings


def main(rounds: int = 40) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            env="testing", secret_key="bench-secret-" + "x1y2z3" * 6, instance_path=Path(tmp), auto_migrate=True
        )
        client = TestApp(create_app(settings))
        client.post_json("/api/users", {"user": {"username": "jake", "email": "jake@x.org", "password": "right-pw1"}})
        cases = {
            "wrong password": {"email": "jake@x.org", "password": "wrong-pw1"},
            "unknown email": {"email": "nobody@x.org", "password": "wrong-pw1"},
        }
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(rounds):
            for name, user in cases.items():
                start = time.perf_counter()
                client.post_json("/api/users/login", {"user": user}, status=401)
                times[name].append(time.perf_counter() - start)
        medians = {name: statistics.median(values) * 1000 for name, values in times.items()}
        for name, ms in medians.items():
            print(f"{name:15} median {ms:7.2f} ms over {rounds} logins")
        print(f"ratio unknown-email / wrong-password: {medians['unknown email'] / medians['wrong password']:.3f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 40)
