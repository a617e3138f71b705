"""The production gunicorn settings keep the promises the deployment guide makes."""

from __future__ import annotations

import importlib
import multiprocessing

import pytest
from gunicorn.workers.sync import SyncWorker  # type: ignore[import-untyped]

from service.gunicorn_worker import DrainingSyncWorker


def load(monkeypatch: pytest.MonkeyPatch, **env: str) -> object:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    import service.gunicorn_conf as conf

    return importlib.reload(conf)


def test_defaults_are_sync_workers_from_cpu_count_never_preloaded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONDUIT_WORKERS", raising=False)
    conf = load(monkeypatch)

    assert conf.worker_class == "service.gunicorn_worker.DrainingSyncWorker"  # type: ignore[attr-defined]
    assert issubclass(DrainingSyncWorker, SyncWorker)  # gunicorn's sync worker, one request at a time
    assert conf.workers == multiprocessing.cpu_count() * 2 + 1  # type: ignore[attr-defined]
    assert conf.preload_app is False  # type: ignore[attr-defined]  # pools are created after fork
    assert conf.max_requests > 0 and conf.max_requests_jitter > 0  # type: ignore[attr-defined]
    assert conf.forwarded_allow_ips == "127.0.0.1"  # type: ignore[attr-defined]


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    conf = load(monkeypatch, CONDUIT_WORKERS="3", CONDUIT_BIND="0.0.0.0:9000", CONDUIT_FORWARDED_ALLOW_IPS="10.0.0.5")

    assert (conf.workers, conf.bind, conf.forwarded_allow_ips) == (3, "0.0.0.0:9000", "10.0.0.5")  # type: ignore[attr-defined]
