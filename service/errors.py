"""The one error type of the service and the RealWorld error body it renders to.

Every failure a client can see, from a validation message to a routing 405 or an
unexpected 500, leaves the service as ``{"errors": {"<key>": ["<message>"]}}``.
An error renders itself (``get_response``) and is a WSGI application, as
werkzeug's HTTP exceptions are, so the dispatcher and the middleware answer
with it the same way. Imports only ``service.json_bodies``, so every layer may raise it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from werkzeug.wrappers import Response

from service.json_bodies import json_response


class ApiError(Exception):
    """An HTTP error with a RealWorld body.

    Raise it through the named constructors so that keys and messages, which are
    part of the API contract, are spelled in one place.
    """

    def __init__(
        self,
        status: int,
        messages: Mapping[str, Sequence[str]],
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(status, dict(messages))
        self.status = status
        self.messages: dict[str, list[str]] = {k: list(v) for k, v in messages.items()}
        self.headers: dict[str, str] = dict(headers or {})

    def to_body(self) -> dict[str, Any]:
        """Return the JSON-ready RealWorld error body."""
        return {"errors": self.messages}

    def get_response(self) -> Response:
        """The error as a response: status, RealWorld body, headers (``Retry-After``, ``Allow``...)."""
        return json_response(self.to_body(), self.status, self.headers)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        """Answer a WSGI request with this error (how middleware refuse one)."""
        return self.get_response()(environ, start_response)

    def __repr__(self) -> str:
        return f"ApiError({self.status}, {self.messages!r})"

    # -- named constructors, one per kind of error in the contract ----------

    @classmethod
    def invalid(cls, messages: Mapping[str, Sequence[str]]) -> ApiError:
        """422: field-keyed validation messages."""
        return cls(422, messages)

    @classmethod
    def bad_request(cls, key: str, message: str) -> ApiError:
        """400: the request could not be read at all (e.g. malformed JSON)."""
        return cls(400, {key: [message]})

    @classmethod
    def unsupported_media_type(cls) -> ApiError:
        """415: a body was sent with a content type other than JSON."""
        return cls(415, {"body": ["must be JSON (Content-Type: application/json)"]})

    @classmethod
    def too_large(cls) -> ApiError:
        """413: the body is larger than ``CONDUIT_MAX_BODY_BYTES``."""
        return cls(413, {"body": ["is too large"]})

    @classmethod
    def taken(cls, *fields: str) -> ApiError:
        """409: unique values (username, email) that belong to someone else."""
        return cls(409, {field: ["has already been taken"] for field in fields})

    @classmethod
    def conflict(cls, key: str, message: str) -> ApiError:
        """409: another request holds what this one needs; it may be retried in a moment."""
        return cls(409, {key: [message]}, {"Retry-After": "1"})

    @classmethod
    def unauthorized(cls, message: str, scheme: str = "Token") -> ApiError:
        """401 about the token: "is missing", "is invalid" or "has expired".

        :param scheme: the one the client is asked for: RealWorld's ``Token``, or
            ``Bearer`` where only that is accepted (``/metrics``).
        """
        return cls(401, {"token": [message]}, {"WWW-Authenticate": scheme})

    @classmethod
    def bad_credentials(cls) -> ApiError:
        """401 for a failed login; says nothing about which part was wrong."""
        return cls(401, {"credentials": ["invalid"]})

    @classmethod
    def forbidden(cls, resource: str, message: str = "forbidden") -> ApiError:
        """403: the resource exists but belongs to someone else (or is the caller: "cannot follow yourself")."""
        return cls(403, {resource: [message]})

    @classmethod
    def not_found(cls, resource: str) -> ApiError:
        """404: no such resource (article, profile, comment, or route)."""
        return cls(404, {resource: ["not found"]})

    @classmethod
    def precondition_failed(
        cls, header: str = "If-Match", message: str = "does not match the current version"
    ) -> ApiError:
        """412: the client's condition ``header`` (``If-Match``, ``If-None-Match``) does not hold."""
        return cls(412, {header: [message]})

    @classmethod
    def too_many_requests(
        cls,
        retry_after: int,
        headers: Mapping[str, str] | None = None,
        limited: str = "requests",
        too_many: str = "too many requests",
    ) -> ApiError:
        """429 saying what was limited and when to try again, as ``Retry-After`` does (and the limit's headers).

        ``{"errors": {"registration": ["too many attempts from this address; try again in 42 seconds"]}}``
        """
        wait = f"{retry_after} second{'' if retry_after == 1 else 's'}"
        message = f"{too_many}; try again in {wait}"
        return cls(429, {limited: [message]}, {**(headers or {}), "Retry-After": str(retry_after)})

    @classmethod
    def unavailable(cls, resource: str, retry_after: int = 5, message: str = "unavailable") -> ApiError:
        """503: something the request needs (the database, the rate-limit storage, the schema) is not ready."""
        return cls(503, {resource: [message]}, {"Retry-After": str(retry_after)})

    @classmethod
    def internal(cls) -> ApiError:
        """500 with a fixed message; the details go to the log, never the client."""
        return cls(500, {"server": ["internal error"]})

    @classmethod
    def from_http(cls, status: int, description: str | None, headers: Mapping[str, str]) -> ApiError:
        """Wrap a werkzeug HTTP error (404, 405, 413, ...) in the RealWorld body."""
        key = {404: "resource", 405: "method", 413: "body"}.get(status, "request")
        message = {404: "not found", 405: "not allowed", 413: "is too large"}.get(
            status, (description or "is invalid").strip()
        )
        return cls(status, {key: [message]}, headers)
