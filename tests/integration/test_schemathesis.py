"""schemathesis, with all its checks, against the service under gunicorn: zero failures, zero 5xx."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.servers import ROOT, gunicorn

pytestmark = pytest.mark.slow

SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
#: Generous limits: the fuzzer must reach the API's logic, not the limiter.
ROOMY = {
    name: "1000000/minute"
    for name in ("ratelimit_default", "ratelimit_login", "ratelimit_register", "ratelimit_writes")
}


@pytest.mark.parametrize("who", ["anonymous", "authenticated"])
def test_schemathesis_finds_nothing(tmp_path: Path, who: str) -> None:
    with gunicorn(tmp_path, workers=2, **ROOMY) as server:
        argv = [
            SCHEMATHESIS,
            "run",
            f"{server.base}/api/openapi.json",
            "--checks",
            "all",
            "--max-examples",
            "25",
            "--seed",
            "1",
            "--no-color",
        ]
        if who == "authenticated":
            token = server.call(
                "POST",
                "/api/users",
                {"user": {"username": "fuzzer", "email": "fuzzer@x.org", "password": "fuzzer-password"}},
            ).body["user"]["token"]
            argv += ["--header", f"Authorization: Token {token}"]
        # Hooks: tests/integration/schemathesis_hooks.py (unique Idempotency-Keys), imported from the checkout.
        env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.integration.schemathesis_hooks", "PYTHONPATH": str(ROOT)}
        result = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        server_errors = re.findall(r"\[service\.access\].* 5\d\d [\d.]+ms", server.log.read_text())

    assert result.returncode == 0, result.stdout[-6000:]
    assert re.search(r"(\d+) generated, \1 passed", result.stdout), result.stdout[-2000:]
    assert server_errors == []
