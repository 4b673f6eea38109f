"""Debian's headless Chromium for the browser tests: a pytest plugin, registered by
tests/conftest.py as ``helpers.browser``.

Playwright drives /usr/bin/chromium (its own browser download cannot work here);
the flags keep Chromium from reaching for the network, which this machine refuses.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the whole run; each test opens its own context."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()


def axe_violations(browser: Browser, page: Page) -> list[str]:
    """What axe-core finds wrong with the page as it is shown now: ids and the elements.

    The pages run without JavaScript (and their CSP forbids script), so axe runs in
    a second context, with script, on the same HTML served at the same address:
    the stylesheet and everything else load from the app as they did.
    """
    html = page.content()
    size = page.viewport_size
    context = browser.new_context(bypass_csp=True, viewport=size)
    try:
        checked = context.new_page()
        checked.route(page.url, lambda route: route.fulfill(body=html, content_type="text/html"))
        checked.goto(page.url)
        results = Axe().run(checked)
    finally:
        context.close()
    return [
        f"{violation['id']}: {[node['target'] for node in violation['nodes']]}"
        for violation in results.response["violations"]
    ]
