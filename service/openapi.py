"""The OpenAPI 3.1 document, generated from the route table and the marshmallow schemas.

The declaration that validates and serialises (``route_table.ROUTES`` and its
schemas) is the one documented here, so the document cannot drift from the
behaviour. Schema class names become component names (``ArticleSchema`` →
``Article``), matching the RealWorld spec.

``python -m service.openapi`` prints the document (the checked-in copy is
``docs/openapi.json``; a test fails when it is out of date).
"""

from __future__ import annotations

import json
import sys
import warnings
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema

from schemas.errors import GenericErrorModelSchema
from service import __version__, route_table
from service.middleware.docs import REDOC_PATH, SPEC_PATH, SWAGGER_PATH
from service.models import MAX_INT
from service.ops.idempotency import PATTERN as IDEMPOTENCY_KEY
from service.router import Route

#: OpenAPI tag of each view module (RealWorld's own tag names).
_TAGS = {
    "users": "User and Authentication",
    "profiles": "Profile",
    "articles": "Articles",
    "comments": "Comments",
    "tags": "Tags",
    "health": "Operations",
}
_ERROR_DESCRIPTIONS = {
    400: "Malformed JSON, or a malformed header (the key names it, e.g. `Idempotency-Key`)",
    401: "Unauthorized: the token is missing, invalid or expired (key `token`), "
    "or login credentials are wrong (key `credentials`)",
    403: "Not yours: the key names the resource (article, comment)",
    404: "Not found: the key names the resource (article, profile, comment)",
    409: "Already taken: the key names the field (username, email), or an `Idempotency-Key` still in use "
    "by a request running now",
    413: "Body too large",
    415: "Body is not JSON",
    412: "`If-Match` names no current version (key `If-Match`): read the resource again",
    422: "Invalid input: the keys name the fields",
    429: "Rate limit exceeded; see Retry-After",
    503: "A backing service is unavailable; see Retry-After",
}


def _schema_name(schema: Schema | type[Schema]) -> str:
    """``ArticleSchema`` → ``Article``; the list item without ``body`` → ``ArticleSummary``."""
    cls = schema if isinstance(schema, type) else type(schema)
    name = cls.__name__.removesuffix("Schema")
    if not isinstance(schema, type) and schema.exclude:
        name += "Summary"
    return name


def _operation_id(route: Route) -> str:
    """RealWorld's operationId: the view name in CamelCase (``get_articles_feed`` → ``GetArticlesFeed``)."""
    return "".join(part.title() for part in route.view.__name__.split("_"))


def _path(route: Route) -> tuple[str, list[dict[str, Any]]]:
    """The OpenAPI path and its path parameters."""
    parameters = []
    for converter, name in route.variables:
        schema: dict[str, Any] = {"type": "string"}
        if converter == "int":
            schema = {"type": "integer", "minimum": 0, "maximum": MAX_INT}
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
    return route.template, parameters


def _error_statuses(route: Route) -> list[int]:
    statuses = set(route.errors)
    if route.auth in ("required", "optional"):
        statuses.add(401)
    if route.body is not None:
        statuses |= {400, 413, 415, 422}
    if route.query is not None:
        statuses.add(422)
    if route.limit_scopes:
        statuses |= {429, 503}  # 503: the database, or a rate-limit storage that fails closed
    if route.current is not None:
        statuses.add(412)
    if route.idempotent:
        statuses |= {400, 409, 422}  # a malformed Idempotency-Key, one still in use, one used on another request
    return sorted(statuses)


def _operation(route: Route) -> dict[str, Any]:
    module = route.view.__module__.rsplit(".", 1)[-1]
    tag = route.tag or _TAGS.get(module, module.title())
    _, parameters = _path(route)
    if route.query is not None:
        parameters.append({"in": "query", "schema": route.query})
    if route.current is not None:
        parameters.append(
            {
                "name": "If-Match",
                "in": "header",
                "required": False,
                "schema": {"type": "string"},
                "description": "The `ETag` of the version read (from the `GET` of this resource): "
                "the write is refused with 412 if it is no longer current (strong comparison; "
                "checked once the write would otherwise succeed, so a 403, 404 or 422 answers first).",
            }
        )
        parameters.append(
            {
                "name": "If-None-Match",
                "in": "header",
                "required": False,
                "schema": {"type": "string"},
                "description": "`*` or `ETag`s: the write is refused with 412 if one names the current "
                "version (weak comparison), checked like `If-Match`.",
            }
        )
    if route.idempotent:
        parameters.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": IDEMPOTENCY_KEY},
                "description": "Any key of your own (a UUID): a retry with the same key gets the first answer "
                "(`Idempotent-Replayed: true`) instead of applying the write twice. Kept for a day; "
                "the same key on a different request is refused with 422.",
            }
        )
    operation: dict[str, Any] = {
        "operationId": _operation_id(route),
        "tags": [tag],
        "summary": route.summary,
        "description": (route.view.__doc__ or "").strip().split("\n\n")[0],
        "responses": {},
    }
    if parameters:
        operation["parameters"] = parameters
    if route.auth == "required":
        operation["security"] = [{"Token": []}]
    elif route.auth == "optional":
        # As RealWorld's own document: no security requirement (``[{}, {"Token": []}]`` says the same, but
        # generators read any requirement as "a token is needed": openapi-python-client's functions then take
        # only an authenticated client), and the description says so.
        operation["description"] = f"{operation['description']} Auth is optional.".strip()
    if route.body is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": route.body}}}
    success: dict[str, Any] = {"description": "No content"}
    if route.reply is not None:
        success = {"description": "OK", "content": {"application/json": {"schema": route.reply}}}
    operation["responses"][str(route.status)] = success
    for status in _error_statuses(route):
        operation["responses"][str(status)] = {"$ref": f"#/components/responses/Error{status}"}
    return operation


def build_spec(routes: tuple[Route, ...] = route_table.ALL_ROUTES) -> dict[str, Any]:
    """The OpenAPI 3.1 document for ``routes``."""
    with warnings.catch_warnings():
        # apispec warns that Meta.fields is ignored; marshmallow-sqlalchemy has already
        # turned Meta.fields into declared fields, which apispec does include.
        warnings.filterwarnings("ignore", message="Only explicitly-declared fields", category=UserWarning)
        return _build(routes)


def _build(routes: tuple[Route, ...]) -> dict[str, Any]:
    spec = APISpec(
        title="Conduit API",
        version=__version__,
        openapi_version="3.1.0",
        plugins=[MarshmallowPlugin(schema_name_resolver=_schema_name)],
        info={
            "description": "The RealWorld Conduit API: users and JWT auth, profiles and follows, "
            "articles, favorites, comments and tags. Every error is "
            '`{"errors": {"<field or resource>": ["message"]}}`.',
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        servers=[{"url": "/"}],
    )
    spec.components.security_scheme(
        "Token",
        {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <jwt>` (or `Bearer <jwt>`), as returned by login and registration.",
        },
    )
    spec.components.schema("GenericErrorModel", schema=GenericErrorModelSchema)
    for status, description in _ERROR_DESCRIPTIONS.items():
        response: dict[str, Any] = {
            "description": description,
            "content": {"application/json": {"schema": "GenericErrorModel"}},
        }
        if status in (429, 503):
            response["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds"}}
        spec.components.response(f"Error{status}", response)
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        path, _ = _path(route)
        paths.setdefault(path, {})[route.method.lower()] = _operation(route)
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    _document_the_docs(spec)
    return spec.to_dict()


def _document_the_docs(spec: APISpec) -> None:
    """The documentation endpoints themselves (served by the docs middleware)."""
    html = {"200": {"description": "HTML page", "content": {"text/html": {"schema": {"type": "string"}}}}}
    spec.path(
        path=SPEC_PATH,
        operations={
            "get": {
                "operationId": "GetOpenApiDocument",
                "tags": ["Operations"],
                "summary": "This document",
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.1 document",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
    )
    spec.path(
        path=SWAGGER_PATH,
        operations={
            "get": {"operationId": "GetSwaggerUi", "tags": ["Operations"], "summary": "Swagger UI", "responses": html}
        },
    )
    spec.path(
        path=REDOC_PATH,
        operations={"get": {"operationId": "GetRedoc", "tags": ["Operations"], "summary": "ReDoc", "responses": html}},
    )


def render(document: dict[str, Any]) -> str:
    """The document as stable, diff-friendly JSON."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render(build_spec()))
