"""The one error type: contract bodies from the named constructors, and validation messages flattened."""

from __future__ import annotations

import pytest

from service.errors import ApiError
from service.request import flatten


@pytest.mark.parametrize(
    ("error", "status", "body"),
    [
        (ApiError.taken("username"), 409, {"username": ["has already been taken"]}),
        (ApiError.unauthorized("is missing"), 401, {"token": ["is missing"]}),
        (ApiError.bad_credentials(), 401, {"credentials": ["invalid"]}),
        (ApiError.forbidden("article"), 403, {"article": ["forbidden"]}),
        (ApiError.forbidden("profile", "cannot follow yourself"), 403, {"profile": ["cannot follow yourself"]}),
        (ApiError.not_found("comment"), 404, {"comment": ["not found"]}),
        (ApiError.too_many_requests(3), 429, {"requests": ["too many requests; try again in 3 seconds"]}),
        (
            ApiError.too_many_requests(1, {}, "writes", "too many changes"),
            429,
            {"writes": ["too many changes; try again in 1 second"]},
        ),
        (ApiError.unavailable("database"), 503, {"database": ["unavailable"]}),
        (ApiError.unavailable("rate_limit"), 503, {"rate_limit": ["unavailable"]}),
    ],
)
def test_error_constructors_give_the_contract_body(error: ApiError, status: int, body: dict) -> None:
    response = error.get_response()

    assert (error.status, response.status_code) == (status, status)
    assert response.json == {"errors": body}
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"


def test_too_many_requests_carries_retry_after_and_the_limits_headers() -> None:
    error = ApiError.too_many_requests(7, {"X-RateLimit-Limit": "10"})

    assert error.get_response().headers["Retry-After"] == "7"
    assert error.headers == {"X-RateLimit-Limit": "10", "Retry-After": "7"}


def test_flatten_folds_envelopes_and_list_indexes() -> None:
    messages = {"article": {"tagList": {0: ["must be a string"], 2: ["must be a string"]}, "title": ["x"]}}

    assert flatten(messages) == {"tagList": ["must be a string"], "title": ["x"]}


def test_flatten_reports_whole_object_errors_under_its_key() -> None:
    assert flatten({"_schema": ["must be an object"]}) == {"body": ["must be an object"]}
    assert flatten({"user": {"_schema": ["must be an object"]}}) == {"user": ["must be an object"]}
