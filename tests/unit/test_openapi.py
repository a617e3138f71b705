"""The OpenAPI document: valid 3.1, the RealWorld contract plus our extras, and in step with the code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate
from webtest import TestApp

from service.app import create_app
from service.openapi import build_spec, render
from tests import realworld
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parents[2]
METHODS = {"get", "post", "put", "delete", "patch"}
#: Endpoints of ours beyond the RealWorld contract.
EXTRAS = {
    ("/healthz", "get"): "GetHealth",
    ("/readyz", "get"): "GetReadiness",
    ("/api/openapi.json", "get"): "GetOpenApiDocument",
    ("/docs", "get"): "GetSwaggerUi",
    ("/redoc", "get"): "GetRedoc",
    ("/api/user/logout", "post"): "Logout",
}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build_spec()


def _operations(paths: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {
        (path, method): operation.get("operationId", "")
        for path, item in paths.items()
        for method, operation in item.items()
        if method in METHODS
    }


def test_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    validate(document)

    assert document["openapi"] == "3.1.0"


def test_paths_methods_and_operation_ids_equal_realworld_plus_extras(document: dict[str, Any]) -> None:
    expected = {**realworld.OPERATIONS, **EXTRAS}

    assert _operations(document["paths"]) == expected


def test_component_names_match_realworld(document: dict[str, Any]) -> None:
    scheme, header = realworld.SECURITY_SCHEME

    assert set(document["components"]["schemas"]) >= realworld.COMPONENTS
    assert document["components"]["securitySchemes"][scheme]["name"] == header


def test_every_api_operation_documents_its_errors(document: dict[str, Any]) -> None:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if not path.startswith("/api/") or path == "/api/openapi.json":
                continue
            statuses = set(operation["responses"])
            assert "429" in statuses, (method, path)
            if operation.get("security") == [{"Token": []}]:
                assert "401" in statuses, (method, path)
            if "requestBody" in operation:
                assert {"400", "415", "422"} <= statuses, (method, path)


def test_protected_and_optional_operations_declare_the_token_scheme(document: dict[str, Any]) -> None:
    feed = document["paths"]["/api/articles/feed"]["get"]
    listing = document["paths"]["/api/articles"]["get"]

    assert feed["security"] == [{"Token": []}]
    assert "security" not in listing and listing["description"].endswith("Auth is optional.")  # as RealWorld's
    assert "401" in listing["responses"]  # a token sent must still be a valid one
    assert {p["name"] for p in listing["parameters"]} == {"limit", "offset", "tag", "author", "favorited"}


def test_exported_document_is_up_to_date(document: dict[str, Any]) -> None:
    exported = (ROOT / "docs" / "openapi.json").read_text()

    assert exported == render(document), "run: python -m service.openapi > docs/openapi.json"


@pytest.fixture
def docs_client(tmp_path: Path) -> TestApp:
    return TestApp(create_app(make_settings(database_url=f"sqlite:///{tmp_path / 'x.db'}", instance_path=tmp_path)))


def test_the_document_is_served_as_json(docs_client: TestApp, document: dict[str, Any]) -> None:
    response = docs_client.get("/api/openapi.json")

    assert response.json == document
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    docs_client.get("/api/openapi.json", headers={"If-None-Match": response.headers["ETag"]}, status=304)


@pytest.mark.parametrize(("page", "asset"), [("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")])
def test_doc_pages_load_their_assets_from_the_service_with_long_lived_caching(
    docs_client: TestApp, page: str, asset: str
) -> None:
    html = docs_client.get(page)
    url = next(part.split('"')[0] for part in html.text.split('src="')[1:] if asset in part)

    script = docs_client.get(url)

    assert html.headers["Content-Type"].startswith("text/html") and "/api/openapi.json" in html.text
    assert url.startswith("/static/docs/") and "?v=" in url
    assert len(script.body) > 100_000
    assert "max-age=31536000" in script.headers["Cache-Control"]
    assert "http://" not in html.text and "https://" not in html.text  # nothing from the internet


@pytest.mark.parametrize(("page", "asset"), [("/docs", "swagger-ui.css"), ("/redoc", "redoc.standalone.js")])
def test_mounted_under_a_sub_path_every_url_the_docs_give_carries_it(
    docs_client: TestApp, page: str, asset: str
) -> None:
    """A shared host serving the app at /conduit (SCRIPT_NAME): assets, document and "Try it out" stay under it."""
    mounted = {"SCRIPT_NAME": "/conduit"}

    html = docs_client.get(page, extra_environ=mounted)
    document = docs_client.get("/api/openapi.json", extra_environ=mounted).json
    url = next(part.split('"')[0] for part in html.text.replace("href=", "src=").split('src="')[1:] if asset in part)

    assert url.startswith("/conduit/static/docs/") and "/conduit/api/openapi.json" in html.text
    assert docs_client.get(url.removeprefix("/conduit"), extra_environ=mounted).status_int == 200
    assert document["servers"] == [{"url": "/conduit"}]
    assert docs_client.get("/api/openapi.json").json["servers"] == [{"url": "/"}]  # at the root, as exported


def test_vendored_assets_keep_their_licences() -> None:
    static = ROOT / "service" / "static" / "docs"

    assert (static / "LICENSE.swagger-ui").exists() and (static / "LICENSE.redoc").exists()
    assert "swagger-ui-dist" in (static / "VERSIONS").read_text()
