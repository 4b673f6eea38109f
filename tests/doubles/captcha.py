"""A real HTTP server standing in for a CAPTCHA provider's verify endpoint.

It answers as Cloudflare Turnstile and hCaptcha do (a form body with ``secret``,
``response``, ``remoteip``, hCaptcha's ``sitekey``) and as Friendly Captcha does (a
JSON body with ``solution``, ``secret``, ``sitekey``): ``{"success": true}`` when
the secret is the one it was given and the answer is one a test marked as solved,
``{"success": false, "error-codes": [...]}`` otherwise. It records every request.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl


@dataclass
class CaptchaDouble:
    """The verify endpoint on 127.0.0.1, in a thread. Use as a context manager."""

    secret: str = "captcha-secret"
    solved: set[str] = field(default_factory=set)
    requests: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Type", "").startswith("application/json"):
                    fields = json.loads(body)
                    answer = fields.get("solution")
                else:
                    fields = dict(parse_qsl(body.decode()))
                    answer = fields.get("response")
                double.requests.append(fields)
                ok = fields.get("secret") == double.secret and answer in double.solved
                verdict: dict[str, Any] = {"success": ok}
                if not ok:
                    verdict["error-codes"] = ["invalid-input-response"]
                data = json.dumps(verdict).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/siteverify"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
