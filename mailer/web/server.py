"""How ``mailer serve`` runs the app under uvicorn: limits, logs, proxy headers.

:func:`server_config` is the one place the server's settings are made, so the
tests run the app exactly as ``mailer serve`` does.
"""

from __future__ import annotations

import uvicorn
from starlette.applications import Starlette

from mailer.web.logs import log_config

__all__ = ["KEEP_ALIVE_SECONDS", "MAX_CONNECTIONS", "server_config"]

# Bounds on what clients can hold: idle keep-alive connections close after a few seconds,
# and past this many connections at once new ones get 503 instead of queueing. Slow
# headers and bodies are the reverse proxy's to cut off (docs/deploying.md).
KEEP_ALIVE_SECONDS = 5
MAX_CONNECTIONS = 200


def server_config(
    app: Starlette,
    host: str,
    port: int,
    *,
    max_connections: int = MAX_CONNECTIONS,
    log_level: str = "INFO",
    log_format: str = "text",
) -> uvicorn.Config:
    """uvicorn's configuration for the app: client addresses from the proxy, tokens kept
    out of the access log and every line in mailer's format (MAILER_LOG_FORMAT), no Server
    header, no websockets, and the limits above."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=log_config(log_level, log_format),
        proxy_headers=True,
        server_header=False,
        ws="none",
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        limit_concurrency=max_connections,
    )
