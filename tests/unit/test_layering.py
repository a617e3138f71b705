"""Which layer may import which: the table below is the rule, and this test is what enforces it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: Module prefix → project modules it may import (prefix match). Third-party imports are free.
ALLOWED: dict[str, tuple[str, ...]] = {
    "service.app": (
        "service.route_table",
        "service.router",
        "service.dispatch",
        "service.limiter",
        "service.middleware",
        "service.shared_reads.store",  # the type of a cache a caller may hand in
        "service.stores",
        "service.db",
        "service.config",
        "service.openapi",
        "service.ops.health",  # the storages /readyz reports on
        "service.queries.journal",  # the invalidations a cache shared by hosts is delivered from
        "service.metrics",
        "service",  # the version, for the build information
    ),
    "service.route_table": (
        "service.views",
        "schemas",
        "service.router",
        "service.shared_reads.surrogates",
        "service.models",
    ),
    "service.router": ("service.errors", "service.shared_reads.surrogates", "service.environ_keys"),
    # The names of what travels in the WSGI environ: a leaf every layer may import.
    "service.environ_keys": (),
    "service.views": ("service.ops", "service.queries", "service.request", "service.errors"),
    # Readiness also says whether the host is stopping.
    "service.views.health": ("service.ops", "service.request", "service.errors", "service.lifecycle"),
    "service.lifecycle": (),
    # The request as views see it: settings, the database through its unit of work, the user.
    "service.request": (
        "service.auth",
        "service.queries",
        "service.config",
        "service.db",
        "service.errors",
        "service.limiter",  # the type of the count the dispatcher owes
        "service.models",
        "service.unit_of_work",
    ),
    # One transaction's boundary: the surrogate keys its ops recorded, nothing of HTTP.
    "service.unit_of_work": ("service.shared_reads.surrogates",),
    # Each route's composed behaviour.
    "service.operations": (
        "service.request",
        "service.router",
        "service.conditional_read",
        "service.db",  # the write intent a transaction begins with
        "service.errors",
        "service.json_bodies",
        "service.ops.idempotency",  # a write's Idempotency-Key is claimed and answered in its transaction
        "service.shared_reads",
        "service.environ_keys",
    ),
    "service.dispatch": (
        "service.request",
        "service.operations",
        "service.db",
        "service.shared_reads.reads",  # the collaborator, and the shared answer a signed-in hit is made from
        "service.shared_reads.shown",
        "service.conditional_read",
        "service.errors",
        "service.router",
        "service.auth",
        "service.limiter",
        "service.queries",
        "service.models",
        "service.config",
        "service.metrics",
        "service.environ_keys",
    ),
    # Counted by route and rule; reads the token, never the database.
    "service.limiter": ("service.errors", "service.config", "service.auth", "service.metrics"),
    # The shared reads: keys, walks, the store's contract; no request, no database.
    "service.shared_reads": (
        "service.shared_reads",
        "service.errors",
        "service.json_bodies",
        "service.config",
        "service.metrics",
    ),
    "service.shared_reads.surrogates": (),
    "service.middleware": (
        "service.errors",
        "service.json_bodies",
        "service.conditional_read",
        "service.config",
        "service.middleware",
        "service.metrics",
        "service.environ_keys",
    ),
    # Counts each request by the route the router matched for it.
    "service.middleware.requestlog": ("service.environ_keys", "service.metrics"),
    # Answers anonymous hits through the shared reads the dispatcher also holds.
    "service.middleware.shared_hits": (
        "service.conditional_read",
        "service.shared_reads.reads",
        "service.environ_keys",
    ),
    # Counts addresses through the limiter the dispatcher also holds.
    "service.middleware.ratelimit": ("service.errors", "service.limiter", "service.metrics"),
    # The storages the settings name; the cache ones implement the shared reads' store contract.
    "service.stores": ("service.config", "service.stores", "service.shared_reads", "service.metrics"),
    "service.logs": ("service.config",),
    "service.openapi": ("service", "service.route_table", "schemas", "service.router"),
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
    "service.warmup": ("service.environ_keys",),
    "service.gunicorn_worker": (),
    "service.ops": (
        "service.queries",
        "service.models",
        "service.auth",
        "service.errors",
        "service.shared_reads.surrogates",
        "service.ops",
    ),
    "service.ops.health": ("service.db", "service.errors", "service.models"),
    "service.queries": ("service.models", "service.errors", "service.queries"),
    "service.auth": ("service.errors", "service.config", "service.environ_keys", "service.models"),
    "service.db": ("service.config",),
    "service.config": (),
    "service.models": ("service.models",),
    "service.conditional_read": ("service.errors", "service.json_bodies"),
    "service.errors": ("service.json_bodies",),
    "service.json_bodies": (),
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
