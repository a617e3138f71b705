"""A real browser (Debian's headless Chromium) opens /docs and /redoc served by gunicorn."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.integration.servers import Gunicorn, gunicorn, require_binary

pytestmark = pytest.mark.slow

#: Flags for a closed network: nothing but the page's own server is contacted.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser_page(tmp_path: Path) -> Iterator[tuple[Any, Gunicorn, list[str]]]:
    """A Chromium page, the server it may talk to, and every URL the page requested."""
    from playwright.sync_api import sync_playwright

    executable = require_binary("chromium")
    with gunicorn(tmp_path, workers=2) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        # Every URL that reached the network: requests the page's CSP refused never leave
        # the browser (they fail with net::ERR_BLOCKED_BY_CSP) and are not counted.
        # Every URL that reached the network. The pages' Content-Security-Policy stops
        # off-host loads (ReDoc's CDN logo) inside the browser: those fail with "csp".
        requested: list[str] = []
        page.on("response", lambda response: requested.append(response.url))
        page.on("requestfailed", lambda request: request.failure == "csp" or requested.append(request.url))
        try:
            yield page, server, requested
        finally:
            browser.close()


def try_it_out_on_get_tags(page: Any) -> str:
    """On a loaded Swagger UI page: open GetTags, "Try it out", "Execute"; the status it shows."""
    tags = page.locator("#operations-Tags-GetTags")
    tags.locator(".opblock-summary").click()
    tags.get_by_role("button", name="Try it out").click()
    tags.get_by_role("button", name="Execute").click()
    status = tags.locator(".live-responses-table tbody .response-col_status").first
    status.wait_for(timeout=30_000)
    return str(status.inner_text()).strip()


def _only_loopback(urls: list[str]) -> bool:
    return all(
        urlsplit(url).hostname in ("127.0.0.1", "localhost") for url in urls if not url.startswith(("data:", "blob:"))
    )


def test_swagger_ui_lists_the_operations_and_try_it_out_works(
    browser_page: tuple[Any, Gunicorn, list[str]], tmp_path: Path
) -> None:
    page, server, requested = browser_page

    page.goto(f"{server.base}/docs")
    page.wait_for_selector(".opblock", timeout=30_000)
    operations = page.locator(".opblock").count()
    status = try_it_out_on_get_tags(page)
    page.screenshot(path=str(tmp_path / "swagger-ui.png"), full_page=True)

    assert operations >= 24  # 19 RealWorld operations + health, readiness, and the docs themselves
    assert status.startswith("200")
    assert _only_loopback(requested), [u for u in requested if "127.0.0.1" not in u]
    print(f"screenshot: {tmp_path / 'swagger-ui.png'}")  # noqa: T201 - for the closing note


def test_redoc_renders_the_operations(browser_page: tuple[Any, Gunicorn, list[str]], tmp_path: Path) -> None:
    page, server, requested = browser_page

    page.goto(f"{server.base}/redoc")
    page.get_by_role("heading", name="Get every tag in use").wait_for(timeout=30_000)
    page.screenshot(path=str(tmp_path / "redoc.png"), full_page=False)
    text = page.inner_text("body")

    for summary in ("Log in with email and password", "Recent articles from followed users", "Favorite an article"):
        assert summary in text
    assert _only_loopback(requested), [u for u in requested if "127.0.0.1" not in u]
    print(f"screenshot: {tmp_path / 'redoc.png'}")  # noqa: T201
