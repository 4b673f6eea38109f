"""Logging for the long-running entry points: one line per action, on stderr.

``python scheduler.py`` calls :func:`configure_logging` once, before anything
logs. Lines look like::

    2026-12-03T09:00:00Z INFO mailer.scheduler: slot 2026-12-03 09:00 GMT: sending 2026-12-03-winter-connections

Times are UTC (a server's logs should not jump at daylight-saving changes).
mailer's loggers say what they do at INFO; other libraries' chatter (APScheduler
announces every job run) is kept to warnings and errors.
"""

from __future__ import annotations

import logging
import sys
import time

__all__ = ["configure_logging"]

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _UTCFormatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created))


def configure_logging(level: int | str = logging.INFO) -> None:
    """Send log records to stderr, one line each: mailer's at ``level``, others' warnings."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_UTCFormatter(FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("mailer").setLevel(level)
