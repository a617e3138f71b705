"""Clients generated from the committed OpenAPI document compile, type-check, and carry a user through the API.

Client developers generate a client instead of writing one, so the document
must be one the mainstream generators read right (issue 33): here
``openapi-python-client`` (PyPI) makes a Python package, and
``openapi-typescript`` + ``openapi-fetch`` (npm, pinned by
``clients/package-lock.json``) a TypeScript one that ``tsc --strict``
compiles. Each then walks a user through a running service
(``clients/python_journey.py``, ``clients/journey.ts``): registration, login,
articles with tags, filters and pages, favorites, comments, follows, the feed,
and the 401/403/404/409/422 errors read as the typed ``GenericErrorModel``.
Where a generator misread the document, the document was changed: operations
whose token is optional carry no security requirement (as RealWorld's own
document), since generators take any requirement to mean a token is needed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.servers import gunicorn, require_binary

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = Path(__file__).with_name("clients")
DOCUMENT = ROOT / "docs" / "openapi.json"
SETTINGS = {"ratelimit_enabled": "false", "log_level": "WARNING"}


def _run(argv: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(argv)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def test_the_generated_python_client_carries_a_user_through_the_api(tmp_path: Path) -> None:
    generator = Path(sys.executable).parent / "openapi-python-client"
    out = tmp_path / "generated"
    out.mkdir()
    _run(
        [str(generator), "generate", "--path", str(DOCUMENT), "--meta", "none", "--output-path", "conduit_client"], out
    )
    assert (out / "conduit_client" / "models" / "generic_error_model.py").is_file()

    with gunicorn(tmp_path, workers=2, **SETTINGS) as server:
        env = {**os.environ, "PYTHONPATH": str(out)}
        said = _run([sys.executable, str(CLIENTS / "python_journey.py"), server.base], tmp_path, env)

    assert "python journey: ok" in said


def test_the_generated_typescript_client_compiles_strictly_and_carries_a_user_through_the_api(tmp_path: Path) -> None:
    npm, node = require_binary("npm"), require_binary("node")
    work = tmp_path / "ts"
    work.mkdir()
    for name in ("package.json", "package-lock.json", "tsconfig.json", "journey.ts"):
        shutil.copy(CLIENTS / name, work / name)
    _run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], work)
    bin_ = work / "node_modules" / ".bin"
    _run([str(bin_ / "openapi-typescript"), str(DOCUMENT), "--output", "schema.d.ts"], work)
    _run([str(bin_ / "tsc"), "--project", "tsconfig.json"], work)  # strict: the journey type-checks against it

    with gunicorn(tmp_path, workers=2, **SETTINGS) as server:
        said = _run([node, str(work / "build" / "journey.js"), server.base], work)

    assert "typescript journey: ok" in said


def test_the_typescript_journey_fails_to_compile_against_a_document_that_lies(tmp_path: Path) -> None:
    """The type check can fail: a document whose article has no ``slug`` does not compile with the journey."""
    npm = require_binary("npm")
    work = tmp_path / "ts"
    work.mkdir()
    for name in ("package.json", "package-lock.json", "tsconfig.json", "journey.ts"):
        shutil.copy(CLIENTS / name, work / name)
    _run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], work)
    lying = tmp_path / "openapi.json"
    lying.write_text(DOCUMENT.read_text().replace('"slug": {', '"not_the_slug": {'))
    bin_ = work / "node_modules" / ".bin"
    _run([str(bin_ / "openapi-typescript"), str(lying), "--output", "schema.d.ts"], work)

    compiled = subprocess.run(
        [str(bin_ / "tsc"), "--project", "tsconfig.json"], cwd=work, capture_output=True, text=True
    )

    assert compiled.returncode != 0 and "slug" in compiled.stdout
