"""Validate every response the API tests produce against the service's own OpenAPI document."""

from __future__ import annotations

import contextlib
import functools
import io
import json
from typing import Any

from openapi_core import OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound, ServerNotFound
from webtest import TestApp
from werkzeug.wrappers import Request, Response

from service.json_bodies import standard_json
from service.openapi import build_spec


@functools.cache
def _openapi() -> OpenAPI:
    return OpenAPI.from_dict(build_spec())


class ValidatingTestApp(TestApp):  # type: ignore[misc]
    """webtest's TestApp that also checks each response against the OpenAPI document.

    Requests to paths or methods the document does not have (the tests of
    unknown routes and 405s) have nothing to be checked against and are let through.
    """

    def do_request(self, req: Any, status: Any = None, expect_errors: Any = None) -> Any:
        response = super().do_request(req, status=status, expect_errors=expect_errors)
        if response.content_type == "application/json" and response.body:
            # orjson's bytes are the standard library's, for every answer the suite sees (json_bodies).
            assert response.body == standard_json(json.loads(response.body)), response.body[:200]
        # Only what locates the operation matters here; headers a test forged on purpose
        # (newlines in X-Request-ID) would trip werkzeug's header checks.
        environ = {k: v for k, v in req.environ.items() if not (isinstance(v, str) and "\n" in v)}
        request = Request(dict(environ, **{"wsgi.input": io.BytesIO(), "CONTENT_LENGTH": "0"}))
        actual = Response(response.body, status=response.status, headers=list(response.headerlist))
        with contextlib.suppress(PathNotFound, OperationNotFound, ServerNotFound):
            _openapi().validate_response(WerkzeugOpenAPIRequest(request), WerkzeugOpenAPIResponse(actual))
        return response
