"""A successful read as it leaves: ``service.conditional_read.ConditionalRead`` and its preconditions."""

from __future__ import annotations

import pytest
from webtest import TestApp
from werkzeug.http import generate_etag

from service.conditional_read import ConditionalRead
from service.json_bodies import JSON_TYPE

BODY = b'{"tags":["dragons"]}'
ETAG = generate_etag(BODY)


@pytest.fixture
def answer() -> TestApp:
    return TestApp(ConditionalRead(BODY))


def test_a_read_carries_its_body_type_length_and_the_hash_of_its_body(answer: TestApp) -> None:
    response = answer.get("/")

    assert response.body == BODY
    assert response.headers["Content-Type"] == JSON_TYPE
    assert response.headers["Content-Length"] == str(len(BODY))
    assert response.headers["ETag"] == f'"{ETAG}"'
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["Vary"] == "Authorization"


def test_a_read_for_one_signed_in_reader_is_private() -> None:
    assert TestApp(ConditionalRead(BODY, private=True)).get("/").headers["Cache-Control"] == "private, no-cache"


def test_a_stored_etag_is_sent_as_given() -> None:
    assert TestApp(ConditionalRead(BODY, "stored")).get("/").headers["ETag"] == '"stored"'


def test_head_gets_the_headers_of_get_and_no_body(answer: TestApp) -> None:
    response = answer.head("/")

    assert response.body == b""
    assert response.headers["Content-Length"] == str(len(BODY))
    assert response.headers["ETag"] == f'"{ETAG}"'


@pytest.mark.parametrize("if_none_match", [f'"{ETAG}"', f'W/"{ETAG}"', f'"other", "{ETAG}"', "*"])
def test_a_client_holding_the_current_body_gets_304_without_body_headers(answer: TestApp, if_none_match: str) -> None:
    response = answer.get("/", headers={"If-None-Match": if_none_match}, status=304)

    assert response.body == b""
    assert "Content-Type" not in response.headers and "Content-Length" not in response.headers
    assert response.headers["ETag"] == f'"{ETAG}"' and response.headers["Vary"] == "Authorization"


def test_a_client_holding_another_body_gets_the_current_one(answer: TestApp) -> None:
    assert answer.get("/", headers={"If-None-Match": '"other"'}, status=200).body == BODY


@pytest.mark.parametrize("if_match", [f'"{ETAG}"', f'"other", "{ETAG}"', "*", " "])
def test_a_matching_if_match_gets_the_body(answer: TestApp, if_match: str) -> None:
    assert answer.get("/", headers={"If-Match": if_match}).body == BODY


@pytest.mark.parametrize("if_match", ['"other"', f'W/"{ETAG}"'])
def test_a_failing_if_match_gets_412_in_the_realworld_shape(answer: TestApp, if_match: str) -> None:
    refused = answer.get("/", headers={"If-Match": if_match}, status=412)

    assert refused.json == {"errors": {"If-Match": ["does not match the current version"]}}


def test_a_failing_if_match_wins_over_a_matching_if_none_match(answer: TestApp) -> None:
    answer.get("/", headers={"If-Match": '"other"', "If-None-Match": f'"{ETAG}"'}, status=412)


def test_a_passing_if_match_leaves_if_none_match_to_decide(answer: TestApp) -> None:
    answer.get("/", headers={"If-Match": f'"{ETAG}"', "If-None-Match": f'"{ETAG}"'}, status=304)
