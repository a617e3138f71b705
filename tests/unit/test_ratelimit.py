"""The limiter and its middleware against a stub dispatcher, and the SQLite-file storage."""

from __future__ import annotations

import json
import multiprocessing
import time
from pathlib import Path
from typing import Any

import pytest
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter
from webtest import TestApp

from service import auth, route_table
from service.errors import ApiError
from service.limiter import Limiter, Limits
from service.middleware.ratelimit import RateLimitMiddleware
from service.router import Router
from service.stores.sqlite_counters import SQLiteCounterStorage
from tests.conftest import TEST_SECRET

#: The service's own route table decides which scopes a request counts against.
ROUTER = Router(route_table.ALL_ROUTES)


#: A token stamp this stub dispatcher refuses, as the real one refuses a revoked token.
REVOKED = "deadbeefdeadbeef"


class StubDispatcher:
    """Echo the body; like the dispatcher, count a request the middleware left to it once the token is checked."""

    def __init__(self, limiter: Limiter) -> None:
        self.limiter = limiter

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        pending = self.limiter.pending(environ)
        if pending is not None:
            claims = auth.request_claims(environ, TEST_SECRET)
            assert claims is not None
            try:
                pending.charge(None if claims.stamp == REVOKED else claims.user_id)
            except ApiError as error:
                return error(environ, start_response)
            if claims.stamp == REVOKED:
                return ApiError.unauthorized("is invalid")(environ, start_response)
            start_response = _adding(start_response, pending.headers)
        body = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps({"echo": body.decode()}).encode()]


def _adding(start_response: Any, headers: list[tuple[str, str]]) -> Any:
    def start(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        return start_response(status, [*response_headers, *headers], exc_info)

    return start


def client(
    default: str = "3/minute",
    login: str = "2/minute",
    register: str = "2/minute",
    writes: str = "2/minute",
    **options: Any,
) -> TestApp:
    strategy = options.pop("limiter", None) or FixedWindowRateLimiter(MemoryStorage())
    limiter = Limiter(
        strategy,
        Limits.parse(default, login, register, writes),
        scopes=ROUTER.limit_scopes,
        authenticates=ROUTER.authenticates,
        secret=TEST_SECRET,
        **options,
    )
    return TestApp(RateLimitMiddleware(StubDispatcher(limiter), limiter))


def token(user_id: int) -> dict[str, str]:
    return {"Authorization": f"Token {auth.issue_token(user_id, '0123456789abcdef', TEST_SECRET, 600)}"}


def test_requests_over_the_limit_get_429_with_the_realworld_body_and_headers() -> None:
    app = client()

    statuses = [app.get("/api/tags", expect_errors=True).status_int for _ in range(5)]
    refused = app.get("/api/tags", status=429)

    assert statuses == [200, 200, 200, 429, 429]
    wait = refused.headers["Retry-After"]
    assert refused.json == {
        "errors": {"requests": [f"too many requests from this client; try again in {wait} seconds"]}
    }
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["X-RateLimit-Limit"] == "3" and refused.headers["X-RateLimit-Remaining"] == "0"
    assert int(refused.headers["X-RateLimit-Reset"]) >= int(time.time())


def test_allowed_responses_carry_the_remaining_allowance() -> None:
    app = client()

    first, second = app.get("/api/tags"), app.get("/api/tags")

    assert (first.headers["X-RateLimit-Remaining"], second.headers["X-RateLimit-Remaining"]) == ("2", "1")


def test_headers_can_be_switched_off_for_allowed_responses() -> None:
    assert "X-RateLimit-Limit" not in client(headers_enabled=False).get("/api/tags").headers


def test_anonymous_clients_are_counted_per_address() -> None:
    app = client(default="1/minute")

    app.get("/api/tags", extra_environ={"REMOTE_ADDR": "10.0.0.1"})
    app.get("/api/tags", extra_environ={"REMOTE_ADDR": "10.0.0.2"})
    app.get("/api/tags", extra_environ={"REMOTE_ADDR": "10.0.0.1"}, status=429)


def test_authenticated_clients_are_counted_per_user_whatever_their_address() -> None:
    app = client(default="2/minute")

    app.get("/api/user", headers=token(7), extra_environ={"REMOTE_ADDR": "10.0.0.1"})
    app.get("/api/user", headers=token(7), extra_environ={"REMOTE_ADDR": "10.0.0.2"})
    app.get("/api/user", headers=token(7), extra_environ={"REMOTE_ADDR": "10.0.0.3"}, status=429)
    app.get("/api/user", headers=token(8), extra_environ={"REMOTE_ADDR": "10.0.0.3"})


def test_login_is_limited_per_account_across_addresses() -> None:
    app = client(default="100/minute", login="2/minute")
    body = {"user": {"email": "Jake@Example.org", "password": "guess"}}

    for n in range(2):
        app.post_json("/api/users/login", body, extra_environ={"REMOTE_ADDR": f"10.0.0.{n}"})
    refused = app.post_json("/api/users/login", body, extra_environ={"REMOTE_ADDR": "10.0.0.9"}, status=429)

    assert refused.json["errors"]["login"][0].startswith("too many attempts for this account; try again in ")


def test_login_body_still_reaches_the_app_after_the_email_is_read() -> None:
    app = client(default="100/minute", login="5/minute")

    response = app.post_json("/api/users/login", {"user": {"email": "a@b.c", "password": "p"}})

    assert json.loads(response.json["echo"]) == {"user": {"email": "a@b.c", "password": "p"}}


def test_login_is_limited_per_address_across_accounts() -> None:
    app = client(default="100/minute", login="2/minute")

    for n in range(2):
        app.post_json("/api/users/login", {"user": {"email": f"u{n}@x.org", "password": "p"}})
    app.post_json("/api/users/login", {"user": {"email": "u9@x.org", "password": "p"}}, status=429)


def test_registration_is_limited_per_address() -> None:
    app = client(default="100/minute", register="2/minute")

    for _ in range(2):
        app.post_json("/api/users", {"user": {}})
    app.post_json("/api/users", {"user": {}}, status=429)


def test_writes_are_limited_per_user_but_reads_are_not() -> None:
    app = client(default="100/minute", writes="2/minute")

    for _ in range(2):
        app.post_json("/api/articles", {}, headers=token(3))
    app.put_json("/api/articles/x", {}, headers=token(3), status=429)
    app.get("/api/articles", headers=token(3))


@pytest.mark.parametrize(("method", "path"), [("GET", "/healthz"), ("GET", "/readyz"), ("OPTIONS", "/api/tags")])
def test_health_checks_and_preflights_are_never_limited(method: str, path: str) -> None:
    app = client(default="1/minute")

    statuses = [app.request(path, method=method, expect_errors=True).status_int for _ in range(3)]

    assert statuses == [statuses[0]] * 3 and statuses[0] < 400


class BrokenStorage(MemoryStorage):
    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        raise ConnectionError("storage is down")


def test_a_failing_storage_is_swallowed_and_the_request_served() -> None:
    app = client(limiter=FixedWindowRateLimiter(BrokenStorage()))

    assert app.get("/api/tags").status_int == 200


def test_a_failing_storage_gives_503_when_configured_to_fail_closed() -> None:
    app = client(limiter=FixedWindowRateLimiter(BrokenStorage()), swallow_errors=False)

    assert app.get("/api/tags", status=503).json == {"errors": {"rate_limit": ["unavailable"]}}


# -- the SQLite-file storage ------------------------------------------------


def test_sqlitefile_storage_counts_expires_and_clears(tmp_path: Path) -> None:
    storage = SQLiteCounterStorage(f"sqlitefile://{tmp_path / 'rl.db'}")
    limiter = FixedWindowRateLimiter(storage)
    item = parse("2/second")

    hits = [limiter.hit(item, "k") for _ in range(3)]
    stats = limiter.get_window_stats(item, "k")
    time.sleep(1.05)
    after_window = limiter.hit(item, "k")
    storage.clear(item.key_for("k"))

    assert hits == [True, True, False] and stats.remaining == 0
    assert after_window is True
    assert storage.get(item.key_for("k")) == 0 and storage.check() is True


def _hammer(path: str) -> int:
    limiter = FixedWindowRateLimiter(SQLiteCounterStorage(f"sqlitefile://{path}"))
    return sum(limiter.hit(parse("250/minute"), "shared") for _ in range(100))


def test_sqlitefile_storage_is_exact_across_processes(tmp_path: Path) -> None:
    with multiprocessing.get_context("fork").Pool(4) as pool:
        allowed = pool.map(_hammer, [str(tmp_path / "rl.db")] * 4)

    assert sum(allowed) == 250


def test_sqlitefile_storage_needs_a_path() -> None:
    with pytest.raises(ValueError, match="file path"):
        SQLiteCounterStorage("sqlitefile://")


def test_a_refused_token_counts_against_its_address_never_the_account_it_names() -> None:
    app = client(default="3/minute", writes="2/minute")
    revoked = {"Authorization": f"Token {auth.issue_token(77, REVOKED, TEST_SECRET, 600)}"}
    for _ in range(5):  # a thief with a revoked token, from one address
        app.post_json("/api/articles", {}, headers=revoked, extra_environ={"REMOTE_ADDR": "10.6.6.6"}, status="*")

    # The owner, signed in again (the same id, a valid token), from elsewhere: nothing was spent.
    owner = app.post_json("/api/articles", {}, headers=token(77), extra_environ={"REMOTE_ADDR": "10.0.0.1"})
    thief = app.get("/api/user", headers=revoked, extra_environ={"REMOTE_ADDR": "10.6.6.6"}, status=429)

    assert owner.status_int == 200 and owner.headers["X-RateLimit-Remaining"] in ("1", "2")
    assert thief.json["errors"]["requests"][0].startswith("too many requests from this client")


def test_a_route_that_checks_no_token_counts_by_address() -> None:
    app = client(default="2/minute")
    for n in range(2):
        app.get("/api/tags", headers=token(n + 1), extra_environ={"REMOTE_ADDR": "10.0.0.5"})

    app.get("/api/tags", headers=token(9), extra_environ={"REMOTE_ADDR": "10.0.0.5"}, status=429)
