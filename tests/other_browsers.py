"""Firefox and WebKit (Safari's engine) for the page tests, beside tests/browser.py's Chromium.

Playwright drives only its own builds of Firefox and WebKit, which it would download; these
drivers use Debian's packages instead, through the browsers' own standard protocols:

- Firefox ESR (``firefox-esr``) through WebDriver BiDi, which Firefox serves itself on a
  local WebSocket (``--remote-debugging-port``): no geckodriver. Console errors arrive as
  ``log.entryAdded`` events.
- WebKitGTK's MiniBrowser (``webkit2gtk-driver``) through ``WebKitWebDriver`` and Selenium,
  on a virtual screen (``Xvfb``): WebKitGTK runs the same WebKit engine and JavaScriptCore
  as Safari. Console errors are caught by a listener the test installs.

Both give ``evaluate(expression) -> value`` and ``errors()``; pages are opened from disk.
As for Chromium, a missing browser fails the tests unless LSTMKIT_SKIP_BROWSER=1.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from browser import skip_or_fail

# records uncaught errors in WebKit, where WebDriver has no console log to read
_ERROR_LISTENER = """
window.__errors = window.__errors || [];
window.addEventListener("error", function (e) { window.__errors.push(e.message); });
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FirefoxPage:
    """A page in headless Firefox, driven over WebDriver BiDi."""

    def __init__(self, port: int) -> None:
        import websocket

        deadline = time.monotonic() + 60
        while True:
            try:  # Firefox refuses WebSocket clients that send an Origin header
                self.ws = websocket.create_connection(
                    f"ws://127.0.0.1:{port}/session", timeout=60, suppress_origin=True
                )
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self._id = 0
        self._events: list[dict] = []
        self.call("session.new", {"capabilities": {}})
        self.call("session.subscribe", {"events": ["log.entryAdded"]})
        self.context = self.call("browsingContext.getTree", {})["contexts"][0]["context"]

    def call(self, method: str, params: dict) -> dict:
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self._id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}: {message.get('message')}")
                return message["result"]
            self._events.append(message)

    def open(self, path: Path) -> None:
        url = Path(path).resolve().as_uri()
        self.call(
            "browsingContext.navigate", {"context": self.context, "url": url, "wait": "complete"}
        )

    def evaluate(self, expression: str):
        result = self.call(
            "script.evaluate",
            {"expression": expression, "target": {"context": self.context}, "awaitPromise": False},
        )
        if result["type"] == "exception":
            raise RuntimeError(result["exceptionDetails"]["text"])
        return _bidi_value(result["result"])

    def errors(self) -> list[str]:
        self.evaluate("0")  # let pending events arrive
        return [
            e["params"].get("text", "")
            for e in self._events
            if e.get("method") == "log.entryAdded" and e["params"].get("level") == "error"
        ]


def _bidi_value(remote: dict):
    """A BiDi remote value as Python: primitives and arrays of them; other objects (a
    promise, a node) come back as None."""
    kind = remote["type"]
    if kind in ("undefined", "null"):
        return None
    if kind == "array":
        return [_bidi_value(v) for v in remote["value"]]
    return remote.get("value")


@contextmanager
def firefox() -> Iterator[FirefoxPage]:
    binary = shutil.which("firefox-esr") or shutil.which("firefox")
    if binary is None:
        skip_or_fail("no Firefox (apt-get install firefox-esr)")
    try:
        import websocket  # noqa: F401
    except ImportError:
        skip_or_fail("websocket-client is not installed (pip install -e '.[dev]')")
    port = _free_port()
    with tempfile.TemporaryDirectory() as profile:
        env = {**os.environ, "HOME": profile}  # Firefox writes to HOME; keep the user's clean
        command = [binary, "--headless", "--no-remote", "--profile", profile]
        command += ["--remote-debugging-port", str(port)]
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            page = FirefoxPage(port)
            yield page
            page.ws.close()
        finally:
            process.terminate()
            process.wait(timeout=30)


class WebKitPage:
    """A page in WebKitGTK's MiniBrowser, driven by Selenium over WebKitWebDriver."""

    def __init__(self, driver) -> None:
        self.driver = driver

    def open(self, path: Path) -> None:
        self.driver.get(Path(path).resolve().as_uri())
        # the listener comes after the page's own scripts ran; the page's banner catches
        # errors from loading (tests check it), the listener any later ones
        self.driver.execute_script(_ERROR_LISTENER)

    def evaluate(self, expression: str):
        return self.driver.execute_script(f"return ({expression});")

    def errors(self) -> list[str]:
        return list(self.driver.execute_script("return window.__errors || [];"))


@contextmanager
def webkit() -> Iterator[WebKitPage]:
    minibrowser = sorted(glob.glob("/usr/lib/*/webkit2gtk-4.*/MiniBrowser"))
    if not shutil.which("WebKitWebDriver") or not minibrowser:
        skip_or_fail("no WebKitGTK driver (apt-get install webkit2gtk-driver)")
    if not shutil.which("Xvfb"):
        skip_or_fail("no virtual screen for WebKitGTK (apt-get install xvfb)")
    try:
        from selenium import webdriver
        from selenium.webdriver.webkitgtk.options import Options
        from selenium.webdriver.webkitgtk.service import Service
    except ImportError:
        skip_or_fail("selenium is not installed (pip install -e '.[dev]')")
    display = f":{_free_port() % 1000 + 100}"
    screen = subprocess.Popen(
        ["Xvfb", display, "-screen", "0", "1400x1000x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    driver = None
    try:
        options = Options()
        options.binary_location = minibrowser[-1]
        options.add_argument("--automation")
        service = Service(shutil.which("WebKitWebDriver"), env={**os.environ, "DISPLAY": display})
        driver = webdriver.WebKitGTK(options=options, service=service)
        driver.set_window_size(1400, 1000)
        yield WebKitPage(driver)
    finally:
        if driver is not None:
            driver.quit()
        screen.terminate()
        screen.wait(timeout=30)
