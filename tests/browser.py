"""A real browser for the page tests: Debian's headless Chromium driven by Playwright.

``open_page(browser, path)`` opens a generated HTML file from disk (file://, as a user
would), blocks every request that would leave the page (anything but file:, data: and
blob:) and records it, and collects console errors and uncaught exceptions; a test then
asserts ``page_log.clean()``.

Chromium is /usr/bin/chromium (the README's test command installs Debian's package);
Playwright is never allowed to download a browser of its own. Without Chromium the browser
tests fail, so that CI cannot pass them by skipping; set LSTMKIT_SKIP_BROWSER=1 to skip them
on a machine that cannot have it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
_LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")


def skip_or_fail(reason: str) -> None:
    if os.environ.get("LSTMKIT_SKIP_BROWSER") == "1":
        pytest.skip(reason)
    pytest.fail(f"{reason} (set LSTMKIT_SKIP_BROWSER=1 to skip the browser tests)")


@contextmanager
def chromium() -> Iterator[object]:
    """A headless Chromium browser, closed afterwards."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("playwright is not installed (pip install -e '.[dev]')")
    if not CHROMIUM.exists():
        skip_or_fail(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class PageLog:
    """What a page did that a test must check: errors and requests to the outside."""

    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def clean(self) -> bool:
        return not self.errors and not self.requests


def open_page(browser, path: Path, *, width: int = 1400, height: int = 1000):
    """``(page, log)``: ``path`` opened from disk in a new page of ``browser``."""
    page = browser.new_page(viewport={"width": width, "height": height})
    log = PageLog()
    page.on("console", lambda m: log.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: log.errors.append(str(e)))

    def guard(route) -> None:
        url = route.request.url
        if url.startswith(_LOCAL_SCHEMES):
            route.continue_()
        else:
            log.requests.append(url)
            route.abort()

    page.route("**/*", guard)
    page.goto(Path(path).resolve().as_uri())
    return page, log
