"""``/metrics``: off by default, readable only by whom the operator allows, and counting what it says.

In-process, one process: the metrics live in the app's own registry (a fresh
one per app), so each test reads exactly its own requests. The multiprocess
mode, with gunicorn's workers dying and Prometheus scraping, is proven in
tests/integration/test_metrics_prometheus.py.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from webtest import TestApp

from service import __version__, warmup
from service.app import WSGIApp, create_app
from service.config import ConfigError, Settings
from service.db import Database, expected_head
from tests.conftest import make_settings, routes_with
from tests.factories import PASSWORD, auth_header, make_article, make_user

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "scrape-token-0123456789"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def build(session_factory: sessionmaker[Session]) -> Callable[..., TestApp]:
    """An app with metrics on (scraped from 127.0.0.1 by default), and whatever else a test sets."""

    def app_with(routes: Any = None, **overrides: object) -> TestApp:
        settings = make_settings(**{"metrics_allow": ("127.0.0.1",), **overrides})
        bind = session_factory.kw["bind"]
        read_engine = bind.execution_options(isolation_level="AUTOCOMMIT") if isinstance(bind, Engine) else None
        kwargs: dict[str, Any] = {"routes": routes} if routes is not None else {}
        app = create_app(settings, database=Database(session_factory, read_engine), **kwargs)
        return TestApp(app, extra_environ={"REMOTE_ADDR": "127.0.0.1"})

    return app_with


def scrape(client: TestApp, **kwargs: Any) -> Samples:
    """Every sample of a scrape, by name and labels."""
    response = client.get("/metrics", **kwargs)
    assert response.status_int == 200
    assert response.content_type == "text/plain"
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def requests_of(samples: Samples, route: str, method: str = "GET", status: str = "2xx", cache: str = "none") -> float:
    labels = frozenset({("route", route), ("method", method), ("status", status), ("cache", cache)})
    return samples.get(("conduit_http_requests_total", labels), 0.0)


def count(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_are_off_unless_someone_may_read_them(client: TestApp) -> None:
    response = client.get("/metrics", status=404)

    assert response.json == {"errors": {"resource": ["not found"]}}


def test_an_address_outside_the_allowed_networks_finds_nothing(build: Callable[..., TestApp]) -> None:
    client = build(metrics_allow=("10.0.0.0/8",))

    refused = client.get("/metrics", extra_environ={"REMOTE_ADDR": "192.0.2.7"}, status=404)
    allowed = client.get("/metrics", extra_environ={"REMOTE_ADDR": "10.1.2.3"})

    assert refused.json == {"errors": {"resource": ["not found"]}}
    assert b"conduit_build_info" in allowed.body


def test_the_bearer_token_is_required_when_set(build: Callable[..., TestApp]) -> None:
    client = build(metrics_allow=(), metrics_token=TOKEN)

    missing = client.get("/metrics", status=401)
    wrong = client.get("/metrics", headers={"Authorization": "Bearer not-the-token-at-all"}, status=401)
    other_scheme = client.get("/metrics", headers={"Authorization": f"Token {TOKEN}"}, status=401)
    right = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})

    assert missing.json == {"errors": {"token": ["is missing"]}}
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    assert wrong.json == other_scheme.json == {"errors": {"token": ["is invalid"]}}
    assert right.status_int == 200
    assert right.headers["Cache-Control"] == "no-store"


def test_with_both_set_a_scrape_needs_the_address_and_the_token(build: Callable[..., TestApp]) -> None:
    client = build(metrics_allow=("127.0.0.1",), metrics_token=TOKEN)
    token = {"Authorization": f"Bearer {TOKEN}"}

    client.get("/metrics", headers=token, extra_environ={"REMOTE_ADDR": "192.0.2.7"}, status=404)
    client.get("/metrics", status=401)
    assert client.get("/metrics", headers=token).status_int == 200


@pytest.mark.parametrize(
    "spoof",
    [
        {"X-Forwarded-For": "127.0.0.1"},
        {"X-Forwarded-For": "127.0.0.1, 127.0.0.1"},
        {"Forwarded": "for=127.0.0.1"},
        {"X-Real-IP": "127.0.0.1"},
        {"X-Forwarded-Host": "127.0.0.1", "X-Forwarded-Proto": "https"},
    ],
)
def test_forwarded_headers_do_not_let_an_outside_address_scrape(
    build: Callable[..., TestApp], spoof: dict[str, str]
) -> None:
    # With no proxy trusted (the default) nothing forwarded is believed; behind one trusted proxy, only the
    # address that proxy appended: a client's own X-Forwarded-For entries stay the client's words.
    direct = build(metrics_allow=("127.0.0.1",))
    proxied = build(metrics_allow=("127.0.0.1",), trusted_proxy_hops=1)
    appended = {**spoof, "X-Forwarded-For": ", ".join(filter(None, [spoof.get("X-Forwarded-For"), "192.0.2.7"]))}

    refused = direct.get("/metrics", headers=spoof, extra_environ={"REMOTE_ADDR": "192.0.2.7"}, status=404)
    through_proxy = proxied.get("/metrics", headers=appended, extra_environ={"REMOTE_ADDR": "127.0.0.1"}, status=404)

    assert refused.json == through_proxy.json == {"errors": {"resource": ["not found"]}}
    assert proxied.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"}).status_int == 200  # the proxy's word


def test_only_the_whole_token_in_the_bearer_header_reads_the_metrics(build: Callable[..., TestApp]) -> None:
    client = build(metrics_allow=(), metrics_token=TOKEN)
    basic = base64.b64encode(f"prometheus:{TOKEN}".encode()).decode()
    wrong = [
        f"Bearer {TOKEN[:-1]}",  # a prefix
        f"Bearer {TOKEN[:1]}",
        f"Bearer {TOKEN}x",  # the token and more
        f"Bearer {TOKEN} {TOKEN}",
        f"Bearer {TOKEN.upper()}",
        f"Basic {basic}",
        f"Basic {TOKEN}",
        f"Token {TOKEN}",
        f"{TOKEN}",
        f"Bearer {'x' * 10_000}",
    ]

    for header in wrong:
        refused = client.get("/metrics", headers={"Authorization": header}, status=401)
        assert refused.json["errors"]["token"] in (["is invalid"], ["is missing"]), header
        assert b"conduit_" not in refused.body
    for query in (f"token={TOKEN}", f"access_token={TOKEN}", f"Authorization=Bearer%20{TOKEN}"):
        assert client.get(f"/metrics?{query}", status=401).json == {"errors": {"token": ["is missing"]}}
    assert client.get("/metrics", headers={"Authorization": f"bearer {TOKEN}"}).status_int == 200  # RFC 9110 11.1


def test_odd_methods_add_no_series(build: Callable[..., TestApp]) -> None:
    client = build()
    anything = TestApp(client.app, lint=False, extra_environ=client.extra_environ)
    anything.request("/api/tags", method="BREW", status=405)
    anything.request("/api/unknown", method="BREW", status=404)
    before = len(scrape(client))

    for n, method in enumerate(["PROPFIND", "TRACE", "CONNECT", "LOCK", "GETX", "M-SEARCH", "X" * 300] * 20):
        anything.request(f"/api/tags?{n}", method=method, expect_errors=True)
        anything.request(f"/api/unknown/{n}", method=method, expect_errors=True)
    samples = scrape(client)

    methods = {dict(labels).get("method") for name, labels in samples if name == "conduit_http_requests_total"}
    assert methods <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}
    assert requests_of(samples, "(unmatched)", method="other", status="4xx") == 2 + 280  # 405s and 404s alike
    assert len(samples) == before


def test_a_client_that_sends_the_warm_up_request_id_is_still_counted(build: Callable[..., TestApp]) -> None:
    client = build()

    client.get("/api/tags", headers={"X-Request-ID": "warmup"})
    client.get("/api/tags", headers={"X-Request-ID": "warm-up"})
    samples = scrape(client)

    assert requests_of(samples, "/api/tags") == 2  # only the app's own warm-up (an environ key) goes uncounted


def test_only_get_and_head_read_the_metrics(build: Callable[..., TestApp]) -> None:
    client = build()

    refused = client.post("/metrics", status=405)
    head = client.head("/metrics")

    assert refused.headers["Allow"] == "GET, HEAD"
    assert refused.json == {"errors": {"method": ["not allowed"]}}
    assert head.status_int == 200
    assert head.body == b""


def test_the_build_is_named_by_version_and_migration_head(build: Callable[..., TestApp]) -> None:
    samples = scrape(build())

    assert count(samples, "conduit_build_info", version=__version__, migration_head=expected_head()) == 1


def test_requests_are_counted_by_route_template_method_and_status_class(
    build: Callable[..., TestApp], db: Session
) -> None:
    client = build()
    article = make_article(db, make_user(db))

    client.get(f"/api/articles/{article.slug}")
    client.get(f"/api/articles/{article.slug}")
    client.get("/api/articles/no-such-article", status=404)
    client.get("/api/nowhere", status=404)
    # webtest's lint refuses a method it does not know; a server passes it on.
    TestApp(client.app, lint=False, extra_environ=client.extra_environ).request("/api/tags", method="BREW", status=405)
    client.get("/docs")
    samples = scrape(client)

    assert requests_of(samples, "/api/articles/{slug}") == 2
    assert requests_of(samples, "/api/articles/{slug}", status="4xx") == 1
    assert requests_of(samples, "(unmatched)", status="4xx") == 1
    assert requests_of(samples, "(unmatched)", method="other", status="4xx") == 1
    assert requests_of(samples, "(other)") == 1  # the docs page: no route of the API
    assert not any("no-such-article" in str(labels) for _, labels in samples)
    assert sum(v for (name, _), v in samples.items() if name == "conduit_http_requests_total") == 6


def test_distinct_urls_add_no_series(build: Callable[..., TestApp]) -> None:
    client = build()
    client.get("/api/articles/first", status=404)
    client.get("/api/first/unknown", status=404)
    before = len(scrape(client))

    for n in range(300):
        client.get(f"/api/articles/missing-{n}", status=404)
        client.get(f"/api/unknown/{n}", status=404)
        client.get(f"/api/profiles/nobody{n}", status=404)
    after = scrape(client)

    assert requests_of(after, "/api/articles/{slug}", status="4xx") == 301
    assert len(after) == before + len(_series_of_one_route(after, "/api/profiles/{username}"))


def _series_of_one_route(samples: Samples, route: str) -> list[Any]:
    return [key for key in samples if ("route", route) in key[1]]


def test_cache_lookups_hits_stores_and_invalidations_are_counted(build: Callable[..., TestApp], db: Session) -> None:
    client = build(cache_url="simple", cache_min_uses=1)
    jake = make_user(db, "jake")
    article = make_article(db, jake)
    url = f"/api/articles/{article.slug}"

    client.get(url)  # a miss, stored
    client.get(url)  # a hit
    client.get(url)  # a hit
    client.post(f"{url}/favorite", headers=auth_header(jake))  # forgets the article (and the lists it is in)
    samples = scrape(client)

    assert requests_of(samples, "/api/articles/{slug}", cache="miss") == 1
    assert requests_of(samples, "/api/articles/{slug}", cache="hit") == 2
    assert requests_of(samples, "/api/articles/{slug}/favorite", method="POST") == 1
    assert count(samples, "conduit_cache_stores_total", route="/api/articles/{slug}") == 1
    assert count(samples, "conduit_cache_invalidations_total") >= 1


def test_every_request_is_counted_and_timed_but_cache_hits_timed_one_in_eight(
    build: Callable[..., TestApp], db: Session
) -> None:
    # A hit costs the metrics one value written, an eighth of the time two more (issue 29's cost bar).
    from service.metrics import HIT_LATENCY_SAMPLE

    client = build(cache_url="simple", cache_min_uses=1)
    article = make_article(db, make_user(db, "jake"))
    url = f"/api/articles/{article.slug}"
    client.get(url)  # a miss, stored
    for _ in range(2 * HIT_LATENCY_SAMPLE):
        client.get(url)
    client.get("/api/tags")
    samples = scrape(client)

    def timed(cache: str, route: str = "/api/articles/{slug}") -> float:
        labels = frozenset({("route", route), ("method", "GET"), ("status", "2xx"), ("cache", cache)})
        return samples.get(("conduit_http_request_duration_seconds_count", labels), 0.0)

    assert requests_of(samples, "/api/articles/{slug}", cache="hit") == 2 * HIT_LATENCY_SAMPLE
    assert timed("hit") == 2 and HIT_LATENCY_SAMPLE == 8
    assert timed("miss") == requests_of(samples, "/api/articles/{slug}", cache="miss") == 1
    assert timed("none", "/api/tags") == 1 or timed("miss", "/api/tags") == 1


def test_rate_limit_refusals_are_counted_by_scope(build: Callable[..., TestApp], db: Session) -> None:
    client = build(ratelimit_enabled=True, ratelimit_storage_uri="memory://", ratelimit_login="2/minute")
    login = {"user": {"email": "nobody@example.org", "password": "not the password"}}

    for _ in range(2):
        client.post_json("/api/users/login", login, status=401)
    client.post_json("/api/users/login", login, status=429)
    samples = scrape(client)

    assert count(samples, "conduit_ratelimit_refusals_total", scope="login") == 1
    assert count(samples, "conduit_login_failures_total") == 2


def test_failed_logins_and_token_revocations_are_counted(build: Callable[..., TestApp], db: Session) -> None:
    client = build()
    jake = make_user(db, "jake")
    ann = make_user(db, "ann")

    client.post_json("/api/users/login", {"user": {"email": jake.email, "password": "wrong password"}}, status=401)
    client.post_json("/api/users/login", {"user": {"email": jake.email, "password": PASSWORD}})
    client.post("/api/user/logout", headers=auth_header(jake), status=204)
    ann_token = auth_header(ann)
    client.put_json("/api/user", {"user": {"password": "a new password here"}}, headers=ann_token)
    client.put_json("/api/user", {"user": {"bio": "no revocation"}}, headers=ann_token)  # the token it kept
    samples = scrape(client)

    assert count(samples, "conduit_login_failures_total") == 1
    assert count(samples, "conduit_token_revocations_total") == 2


def test_503s_are_counted_by_cause(build: Callable[..., TestApp]) -> None:
    def lost(*_: Any, **__: Any) -> Any:
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    client = build(routes=routes_with("tags.get_tags", lost))

    client.get("/api/tags", status=503)
    client.get("/api/tags", status=503)
    samples = scrape(client)

    assert count(samples, "conduit_unavailable_total", cause="database") == 2
    assert requests_of(samples, "/api/tags", status="5xx") == 2


def test_a_multi_process_server_without_a_folder_is_told_so(build: Callable[..., TestApp]) -> None:
    client = build()

    response = client.get("/metrics", extra_environ={"wsgi.multiprocess": True}, status=503)

    assert response.json == {"errors": {"metrics": ["need CONDUIT_METRICS_DIR: this server runs several processes"]}}


def test_pool_checkouts_and_new_connections_are_counted(tmp_path: Any) -> None:
    settings = make_settings(
        database_url=f"sqlite:///{tmp_path / 'conduit.db'}",
        instance_path=tmp_path,
        auto_migrate=True,
        metrics_allow=("127.0.0.1",),
    )
    app: WSGIApp = create_app(settings)
    client = TestApp(app, extra_environ={"REMOTE_ADDR": "127.0.0.1"})

    for _ in range(3):
        client.get("/api/tags")
    samples = scrape(client)

    # Reads have a pool of their own, in autocommit, on a SQLite file as on PostgreSQL (db.make_read_engine).
    assert count(samples, "conduit_db_pool_checkouts_total", pool="read") >= 3
    assert 1 <= count(samples, "conduit_db_pool_waits_total", pool="read") <= 2  # one connection, kept in the pool


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"metrics_allow": ("not-an-address",)}, "CONDUIT_METRICS_ALLOW"),
        ({"metrics_token": "short"}, "CONDUIT_METRICS_TOKEN must be at least 16"),
    ],
)
def test_malformed_metrics_settings_are_refused(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_settings(**overrides)


def test_metrics_settings_are_read_from_the_environment(tmp_path: Any) -> None:
    settings = Settings.from_env(
        {
            "CONDUIT_INSTANCE_PATH": str(tmp_path),
            "CONDUIT_METRICS_ALLOW": "127.0.0.1, 10.0.0.0/8",
            "CONDUIT_METRICS_TOKEN": TOKEN,
        }
    )

    assert settings.metrics_allow == ("127.0.0.1/32", "10.0.0.0/8")
    assert settings.metrics_enabled
    assert not Settings.from_env({"CONDUIT_INSTANCE_PATH": str(tmp_path)}).metrics_enabled


def test_a_new_workers_warm_up_reads_are_not_counted(build: Callable[..., TestApp]) -> None:
    client = build()

    warmup.warm(client.app)
    client.get("/api/tags")
    samples = scrape(client)

    assert sum(v for (name, _), v in samples.items() if name == "conduit_http_requests_total") == 1


def test_the_grafana_dashboard_reads_only_series_the_service_exposes(build: Callable[..., TestApp]) -> None:
    response = build().get("/metrics")
    exposed = set()
    for family in text_string_to_metric_families(response.text):
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}[family.type]
        exposed |= {family.name + suffix for suffix in suffixes}
    dashboard = json.loads((ROOT / "docs" / "grafana-conduit.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    used = {name for expr in exprs for name in re.findall(r"\bconduit_[a-z_]+\b", expr)}

    assert used <= exposed, used - exposed
    families = {family.name for family in text_string_to_metric_families(response.text)}
    assert {re.sub(r"_(total|bucket|count|sum)$", "", name) for name in used} == families  # a panel for each


def test_apps_built_twice_in_one_process_share_one_set_of_counts_in_the_folder(tmp_path: Path) -> None:
    # In a process of its own: choosing a folder puts prometheus_client in multiprocess mode for good.
    script = f"""
from service.metrics import make_metrics
from tests.conftest import make_settings
settings = make_settings(metrics_allow=("127.0.0.1",), metrics_dir={str(tmp_path)!r})
first, second = make_metrics(settings, lambda: ("v", "h")), make_metrics(settings, lambda: ("v", "h"))
for metrics in (first, second, first):
    metrics.request("/api/tags", "GET", 200, "none", 0.001)
print(first.exposition("")[0].decode())
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)

    series = 'conduit_http_requests_total{cache="none",method="GET",route="/api/tags",status="2xx"}'
    assert f"{series} 3.0" in done.stdout
