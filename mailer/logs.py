"""Logging for the long-running entry points: one line per event, on stderr, text or JSON.

``python scheduler.py``, ``mailer serve`` and ``mailer send`` call
:func:`configure_logging` once, before anything logs (``mailer serve`` hands
:func:`logging_config` to uvicorn, so that its own lines look the same). Text lines::

    2026-12-03T09:00:00Z INFO mailer.scheduler: slot 2026-12-03 09:00 GMT: sending 2026-12-03-winter-connections

``MAILER_LOG_FORMAT=json`` writes one JSON object a line instead::

    {"time": "2026-12-03T09:00:00.000Z", "level": "INFO", "logger": "mailer.scheduler", "message": "slot ..."}

Every event is one line, whatever it holds: a line break inside a message (or a
traceback) is written as ``\\n``. Times are UTC (a server's logs should not jump at
daylight-saving changes). mailer's loggers write from ``MAILER_LOG_LEVEL`` (INFO by
default); other libraries' chatter (APScheduler announces every job run) is kept to
warnings and errors.
"""

from __future__ import annotations

import json
import logging
import logging.config
import sys
import time
from typing import Any

__all__ = ["JsonFormatter", "TextFormatter", "configure_logging", "logging_config"]

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _utc(record: logging.LogRecord, *, millis: bool = False) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{stamp}.{int(record.msecs):03d}Z" if millis else f"{stamp}Z"


def _one_line(text: str) -> str:
    return text.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n")


class TextFormatter(logging.Formatter):
    """``TIME LEVEL LOGGER: message`` on one line, the time in UTC."""

    def __init__(self, fmt: str = FORMAT, *args: Any, **kwargs: Any) -> None:
        super().__init__(FORMAT, *args, **kwargs)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _utc(record)

    def format(self, record: logging.LogRecord) -> str:
        return _one_line(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message (and the exception)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _utc(record, millis=True),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


FORMATTERS: dict[str, type[logging.Formatter]] = {"text": TextFormatter, "json": JsonFormatter}


def _formatter(fmt: str) -> type[logging.Formatter]:
    try:
        return FORMATTERS[str(fmt)]
    except KeyError:
        raise ValueError(f"log format {fmt!r}: use text or json") from None


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record comes (a test's CLI runner swaps it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass  # always the current sys.stderr


def configure_logging(level: int | str = logging.INFO, fmt: str = "text") -> None:
    """Send log records to stderr, one line each: mailer's from ``level``, others' warnings.

    Replaces plain stream handlers (a second call, ``basicConfig``'s), and leaves any
    other (a test framework's capture) alone.
    """
    handler = StderrHandler()
    handler.setFormatter(_formatter(fmt)())
    root = logging.getLogger()
    kept = [h for h in root.handlers if type(h) not in (logging.StreamHandler, StderrHandler)]
    root.handlers[:] = [*kept, handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("mailer").setLevel(level)
    logging.captureWarnings(True)


def logging_config(level: str = "INFO", fmt: str = "text") -> dict[str, Any]:
    """The same set-up as a :func:`logging.config.dictConfig` dictionary (for uvicorn)."""
    formatter = f"{__name__}.{_formatter(fmt).__name__}"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"mailer": {"()": formatter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "mailer",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": "WARNING"},
        "loggers": {"mailer": {"level": str(level)}},
    }
