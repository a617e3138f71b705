"""A new worker's warm-up: ordinary reads of the commonest kinds, run through the whole app."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from service import warmup
from service.app import create_app
from tests.conftest import make_settings


def test_warm_up_runs_each_read_through_the_app_and_reads_each_answer(tmp_path: Path) -> None:
    app = create_app(make_settings(database_url=f"sqlite:///{tmp_path / 'warm.db'}", instance_path=tmp_path))
    seen: list[tuple[str, str, str]] = []

    def recording(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            seen.append((environ["PATH_INFO"], status.split()[0], dict(headers)["X-Request-ID"]))
            return start_response(status, headers, exc_info)

        return app(environ, start)

    warmup.warm(recording)

    assert [(path, status) for path, status, _ in seen] == [
        ("/readyz", "200"),
        ("/api/tags", "200"),
        ("/api/articles", "200"),
        ("/api/articles/-warmup-", "404"),
        ("/api/profiles/-warmup-", "404"),
    ]
    assert {request_id for _, _, request_id in seen} == {"warmup"}  # told apart in the request log


def test_warm_up_stops_at_the_first_server_error() -> None:
    """A database that is down has nothing to warm (and each try could wait out a connect timeout)."""
    tried: list[str] = []

    def failing(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        tried.append(environ["PATH_INFO"])
        start_response("503 Service Unavailable", [("Content-Type", "application/json")])
        return [b'{"errors": {"database": ["unavailable"]}}']

    warmup.warm(failing)

    assert tried == ["/readyz"]
