"""Logging for ``mailer serve``: uvicorn's set-up, with members' link tokens kept out of it.

A link token is a member's credential for unsubscribing and for the preference
centre; an access log line with one in it would hand that to whoever reads the
logs. :class:`RedactTokens` replaces the token part of ``/unsubscribe/…``,
``/preferences/…`` and ``/confirm/…`` paths in every record it sees, and
:func:`log_config` puts it on uvicorn's handlers, and sends mailer's own
loggers (one line per action: "unsubscribed: subscriber=12 via=one-click") to
the same place.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

from uvicorn.config import LOGGING_CONFIG

__all__ = ["RedactTokens", "log_config", "redact"]

_TOKEN_PATH = re.compile(r"/(unsubscribe|preferences|confirm)/[^\s\"'?#]+")


def redact(text: str) -> str:
    """The text with the token of every member link replaced by ``[token]``."""
    return _TOKEN_PATH.sub(r"/\1/[token]", text)


class RedactTokens(logging.Filter):
    """Removes link tokens from a record's message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def log_config(level: str = "INFO") -> dict[str, Any]:
    """uvicorn's logging configuration with :class:`RedactTokens` on every handler, plus mailer's loggers."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_tokens"] = {"()": f"{__name__}.RedactTokens"}
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("redact_tokens")
    config["loggers"]["mailer"] = {"handlers": ["default"], "level": level, "propagate": False}
    return config
