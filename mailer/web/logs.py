"""Logging for ``mailer serve``: uvicorn's lines in mailer's format, with members' link tokens kept out.

A link token is a member's credential for unsubscribing and for the preference
centre; an access log line with one in it would hand that to whoever reads the
logs. :class:`RedactTokens` replaces the token part of ``/unsubscribe/…``,
``/preferences/…``, ``/confirm/…`` and ``/change-address/…`` paths, and the
address in a members API path (``/api/v1/members/ann@…``), in every record it sees, and
:func:`log_config` puts it on the one handler that uvicorn's loggers
(``uvicorn.error``, ``uvicorn.access``) and mailer's own share: one line per
event, with a UTC time, as text or JSON (``MAILER_LOG_FORMAT``).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from mailer.logs import logging_config

__all__ = ["RedactTokens", "log_config", "redact"]

_TOKEN_PATH = re.compile(r"/(unsubscribe|preferences|confirm|change-address)/[^\s\"'?#]+")
# The members API looks members up by address: an address is personal data, kept out of logs.
_ADDRESS_PATH = re.compile(r"(/api/v1/members/)[^\s\"'?#/]*(?:@|%40)[^\s\"'?#/]*", re.IGNORECASE)


def redact(text: str) -> str:
    """The text with every member link's token replaced by ``[token]``, and every address
    in a members API path by ``[address]``."""
    return _ADDRESS_PATH.sub(r"\1[address]", _TOKEN_PATH.sub(r"/\1/[token]", text))


class RedactTokens(logging.Filter):
    """Removes link tokens from a record's message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def log_config(level: str = "INFO", fmt: str = "text") -> dict[str, Any]:
    """mailer's logging set-up for uvicorn: its access and error lines through mailer's
    formatter, with :class:`RedactTokens` on the handler."""
    config = logging_config(level, fmt)
    config["filters"] = {"redact_tokens": {"()": f"{__name__}.RedactTokens"}}
    config["handlers"]["stderr"]["filters"] = ["redact_tokens"]
    # uvicorn's loggers follow MAILER_LOG_LEVEL too (WARNING drops the access log).
    config["loggers"].update(
        {
            "uvicorn": {"level": level},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"level": level},
        }
    )
    return config
