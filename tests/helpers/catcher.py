"""A real HTTP server on loopback that keeps every JSON body posted to it: a chat or
monitoring webhook, as MAILER_NOTICE_URL may name one."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Catcher:
    def __init__(self, server: ThreadingHTTPServer) -> None:
        self.server = server
        self.posted: list[dict[str, Any]] = []
        self.status = 200

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/hooks/editors"


@contextmanager
def catcher() -> Iterator[Catcher]:
    """A webhook on 127.0.0.1 that answers ``status`` (200) and keeps what was posted."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            caught.posted.append(json.loads(body))
            self.send_response(caught.status)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    caught = Catcher(server)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield caught
    finally:
        server.shutdown()
        server.server_close()
