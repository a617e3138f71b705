"""Imports follow the layer table of STYLE.md §3; this test is what enforces it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: Module prefix → project modules it may import (prefix match). Third-party imports are free.
ALLOWED: dict[str, tuple[str, ...]] = {
    "service.app": (
        "service.routing",
        "service.router",
        "service.web",
        "service.middleware",
        "service.stores",
        "service.db",
        "service.config",
        "service.openapi",
        "service.views.health",  # to bind the readiness view to the storages it reports on
        "service.metrics",
        "service",  # the version, for the build information
    ),
    "service.routing": ("service.views", "schemas", "service.router", "service.surrogates"),
    "service.router": ("service.errors", "service.surrogates"),
    "service.surrogates": (),
    "service.views": ("service.ops", "service.web", "service.errors"),
    # Readiness also says whether the host is stopping.
    "service.views.health": ("service.ops", "service.web", "service.errors", "service.lifecycle"),
    "service.lifecycle": (),
    "service.web": (
        "service.middleware.cache",  # the hand-over protocol and personalisation of shared answers
        "service.surrogates",
        "service.answer",
        "service.errors",
        "service.router",
        "service.wire",
        "service.auth",
        "service.queries",
        "service.models",
        "service.config",
        "service.ops.idempotency",  # a write's Idempotency-Key is claimed and answered in its transaction
        "service.metrics",
    ),
    "service.middleware": (
        "service.errors",
        "service.wire",
        "service.answer",
        "service.config",
        "service.middleware",
        "service.metrics",
    ),
    # Counts each request by the route the router matched for it.
    "service.middleware.requestlog": ("service.config", "service.metrics", "service.router"),
    # Reads what a route declares it depends on; the surrogate keys are the cache's vocabulary.
    "service.middleware.cache": (
        "service.errors",
        "service.wire",
        "service.answer",
        "service.router",
        "service.surrogates",
        "service.metrics",
    ),
    # Keys authenticated requests by user id: reads the token, never the database.
    "service.middleware.ratelimit": (
        "service.errors",
        "service.config",
        "service.middleware",
        "service.auth",
        "service.metrics",
    ),
    "service.stores": ("service.config", "service.stores"),
    "service.logs": ("service.config",),
    "service.openapi": ("service", "service.routing", "schemas", "service.router"),
    # Composition roots: they see every layer.
    "service.cli": ("service", "schemas"),
    "service.gunicorn_conf": (
        "service.config",
        "service.lifecycle",
        "service.app",
        "service.db",
        "service.warmup",
        "service.metrics",
    ),
    # Hands every layer the same counters; reads only the settings.
    "service.metrics": ("service.config",),
    "service.warmup": ("service.config",),
    "service.gunicorn_worker": (),
    "service.ops": (
        "service.queries",
        "service.models",
        "service.auth",
        "service.errors",
        "service.surrogates",
        "service.ops",
    ),
    "service.ops.health": ("service.db", "service.errors", "service.models"),
    "service.queries": ("service.models", "service.errors", "service.queries"),
    "service.auth": ("service.errors", "service.config"),
    "service.db": ("service.config",),
    "service.config": (),
    "service.models": ("service.models",),
    "service.answer": ("service.errors", "service.wire"),
    "service.errors": ("service.wire",),
    "service.wire": (),
    "schemas": ("schemas", "service.models"),
}
PROJECT = ("service", "schemas")


def _modules() -> list[tuple[str, Path]]:
    found = []
    for package in PROJECT:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found.append((".".join(parts), path))
    return found


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {n for n in names if n.split(".")[0] in PROJECT}


def _rule_for(module: str) -> tuple[str, ...] | None:
    matches = [prefix for prefix in ALLOWED if module == prefix or module.startswith(prefix + ".")]
    return ALLOWED[max(matches, key=len)] if matches else None


@pytest.mark.parametrize(("module", "path"), _modules(), ids=[m for m, _ in _modules()])
def test_module_imports_only_what_its_layer_allows(module: str, path: Path) -> None:
    allowed = _rule_for(module)
    if allowed is None:
        assert module in ("service", "schemas"), f"{module} has no row in the layer table"
        assert not _imports(path), f"{module} must import nothing from the project"
        return

    def ok(name: str) -> bool:
        # "from service import queries" names the package and the module: judge the module.
        if name in ("service", "schemas") or name == module:
            return True
        return any(name == a or name.startswith(a + ".") for a in allowed)

    bad = sorted(
        n for n in _imports(path) if not ok(n) and not any(other.startswith(n + ".") for other in _imports(path))
    )
    assert not bad, f"{module} imports {bad}, outside its layer"
