"""Serve one page on this machine only: ``lstmkit explore --serve``.

The server binds 127.0.0.1 (never all interfaces: a trace of a private text stays private)
and answers with the one page, whatever else lies in its folder; anything but a GET of
that page is a 404. Pages work from disk as well; serving is for browsers or setups that
restrict file:// pages.
"""

from __future__ import annotations

import webbrowser
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

HOST = "127.0.0.1"


class _OnePage(BaseHTTPRequestHandler):
    def __init__(self, *args, page: Path, **kwargs) -> None:
        self.page = page
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:  # the name http.server calls
        path = unquote(urlsplit(self.path).path)
        if path not in ("/", f"/{self.page.name}"):
            self.send_error(404, f"this server has only /{self.page.name}")
            return
        body = self.page.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # one line at start is enough; no access log on the terminal


def page_server(page: Path, port: int = 0) -> tuple[ThreadingHTTPServer, str]:
    """A server for ``page`` on 127.0.0.1:``port`` (0: any free port) and the page's URL;
    call ``serve_forever()`` on it."""
    page = Path(page).resolve()
    server = ThreadingHTTPServer((HOST, port), partial(_OnePage, page=page))
    return server, f"http://{HOST}:{server.server_port}/{quote(page.name)}"


def serve_page(page: Path, port: int = 0, *, open_browser: bool = True) -> None:
    """Serve ``page`` until Ctrl-C, opening it in the default browser first."""
    server, url = page_server(page, port)
    with server:
        print(f"serving {url} on this machine only; Ctrl-C stops", flush=True)
        if open_browser:
            webbrowser.open(url)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print("stopped")
