"""Request logging: one line per request, request ids, and no secrets."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker
from webtest import TestApp

from service.app import create_app
from service.config import Settings
from service.db import Database
from service.logs import ROOT_LOGGER, configure_logging
from tests.conftest import make_settings, routes_with
from tests.factories import PASSWORD, auth_header, make_user, token_for


@pytest.fixture
def access(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="service.access")
    return caplog


def _logging_to_a_stream(monkeypatch: pytest.MonkeyPatch, log_format: str) -> io.StringIO:
    """The service's log lines, in ``log_format``, written to a stream the test reads instead of stderr."""
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    configure_logging(make_settings(log_format=log_format))
    return stream


def test_each_request_logs_one_line_with_its_facts(
    client: TestApp, db: Session, access: pytest.LogCaptureFixture
) -> None:
    jake = make_user(db, "jake")

    response = client.get("/api/user", headers=auth_header(jake))

    (record,) = [r for r in access.records if r.name == "service.access"]
    assert (record.method, record.path, record.status) == ("GET", "/api/user", 200)  # type: ignore[attr-defined]
    assert record.size == len(response.body)  # type: ignore[attr-defined]
    assert record.duration_ms >= 0  # type: ignore[attr-defined]
    assert record.user_id == jake.id  # type: ignore[attr-defined]
    assert record.request_id == response.headers["X-Request-ID"]  # type: ignore[attr-defined]


def test_a_sane_incoming_request_id_is_kept(client: TestApp) -> None:
    response = client.get("/api/tags", headers={"X-Request-ID": "lb-1234.abc"})

    assert response.headers["X-Request-ID"] == "lb-1234.abc"


@pytest.mark.parametrize("incoming", ["", "x" * 200, "bad id\nforged log line", "<script>"])
def test_an_unsafe_incoming_request_id_is_replaced(client: TestApp, incoming: str) -> None:
    response = client.get("/api/tags", headers={"X-Request-ID": incoming})

    assert response.headers["X-Request-ID"] != incoming
    assert len(response.headers["X-Request-ID"]) == 32


def test_the_longest_sane_request_id_is_kept_and_one_longer_replaced(client: TestApp) -> None:
    kept = client.get("/api/tags", headers={"X-Request-ID": "a" * 128})
    replaced = client.get("/api/tags", headers={"X-Request-ID": "a" * 129})

    assert kept.headers["X-Request-ID"] == "a" * 128
    assert len(replaced.headers["X-Request-ID"]) == 32


@pytest.mark.parametrize("log_format", ["text", "json"])
@pytest.mark.parametrize(
    "incoming",
    [
        "id\r\nSet-Cookie: session=forged",
        "id\n2026-01-01 00:00:00,000 INFO [service.access] POST /api/user/logout 204",
        "id\u2028forged",
        "ïd-ünïcode",
        "id\x00nul",
        "id\x1b[31mred",
        "x" * 100_000,
    ],
)
def test_a_request_id_with_line_breaks_control_characters_or_unicode_reaches_no_header_and_no_log_line(
    client: TestApp, service_logger: logging.Logger, monkeypatch: pytest.MonkeyPatch, log_format: str, incoming: str
) -> None:
    # Sent as a raw WSGI value, past what webtest's own header checks would refuse: a server may pass it on.
    stream = _logging_to_a_stream(monkeypatch, log_format)

    response = client.get("/api/tags", extra_environ={"HTTP_X_REQUEST_ID": incoming})

    given = response.headers["X-Request-ID"]
    assert len(given) == 32 and given.isalnum()
    assert "Set-Cookie" not in response.headers
    assert all("\r" not in value and "\n" not in value for _, value in response.headerlist)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1, lines
    assert given in lines[0] and "forged" not in lines[0] and "\x1b" not in lines[0] and "xxxxxxxxxx" not in lines[0]


def test_no_token_or_password_reaches_the_log(client: TestApp, db: Session, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    jake = make_user(db, "jake")
    token = token_for(jake)

    client.get("/api/user", headers={"Authorization": f"Token {token}"})
    client.post_json("/api/users/login", {"user": {"email": "jake@example.org", "password": PASSWORD}})
    client.get("/api/user", headers={"Authorization": "Token forged.token.value"}, status=401)

    assert token not in caplog.text and PASSWORD not in caplog.text and "forged.token" not in caplog.text


def test_an_unexpected_error_is_logged_once_with_its_request_id(
    settings: Settings, session_factory: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    def explode(request: object) -> None:
        raise RuntimeError("boom")

    # A broken view on purpose: outside the documented contract.
    client = TestApp(
        create_app(settings, routes=routes_with("tags.get_tags", explode), database=Database(session_factory))
    )

    with caplog.at_level(logging.ERROR):
        response = client.get("/api/tags", headers={"X-Request-ID": "req-42"}, status=500)

    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is not None
    assert "req-42" in errors[0].getMessage()
    assert response.headers["X-Request-ID"] == "req-42"


@pytest.fixture
def service_logger() -> Iterator[logging.Logger]:
    """The service's logger, restored after the test reconfigures it."""
    logger = logging.getLogger(ROOT_LOGGER)
    saved = (list(logger.handlers), logger.level, logger.propagate)
    logger.handlers = []
    yield logger
    logger.handlers, logger.level, logger.propagate = saved[0], saved[1], saved[2]


def test_json_log_format_writes_one_json_object_per_line(
    client: TestApp, service_logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = _logging_to_a_stream(monkeypatch, "json")

    client.get("/api/tags", headers={"X-Request-ID": "json-1"})

    line = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert line["logger"] == "service.access" and line["level"] == "INFO"
    assert line["request_id"] == "json-1" and line["status"] == 200 and line["path"] == "/api/tags"


FORGED = "/api/articles/x%0A2026-01-01%2000:00:00,000%20INFO%20[service.access]%20POST%20/api/user/logout%20204"


@pytest.mark.parametrize("log_format", ["text", "json"])
@pytest.mark.parametrize("path", [FORGED, FORGED.replace("%0A", "%0D%0A"), FORGED.replace("%0A", "%E2%80%A8")])
def test_a_control_character_in_the_path_cannot_forge_a_log_line(
    client: TestApp, service_logger: logging.Logger, monkeypatch: pytest.MonkeyPatch, log_format: str, path: str
) -> None:
    stream = _logging_to_a_stream(monkeypatch, log_format)

    client.get(path, status=404)

    lines = stream.getvalue().splitlines()  # str.splitlines also splits at \r and U+2028
    assert len(lines) == 1, lines
    logged = json.loads(lines[0])["message"] if log_format == "json" else lines[0]
    assert "POST /api/user/logout" in logged  # still there, as data of the one line
    if log_format == "text":
        assert "\\x" in logged  # escaped where the line break was
