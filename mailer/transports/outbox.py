"""The outbox transport: one .eml file per recipient, for trying a send without sending.

Files go under ``<outbox_dir>/<issue>/`` and are named after the recipient, so a
re-run overwrites rather than duplicates. A recipient with an envelope sender of its
own (a VERP ``return_path``) gets it as the first line, ``Return-Path: <...>``, as
the receiving server would write it. Each is written to a temporary file in
the same folder, flushed to disk and renamed over the final name: a reader (or a
crash) sees a whole message or none.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from pathlib import Path

from mailer.headersafety import HeaderInjectionError
from mailer.mail import Batch, Delivery, DeliveryState, Recipient, refused
from mailer.transports.base import TransportBase
from mailer.transports.message import MessageTemplate, return_path_header
from mailer.transports.ratelimit import NOT_HANDED_OVER, Limiter, StopWaiting, Unlimited

_UNSAFE = re.compile(r"[^a-z0-9@._+-]")
_MAX_STEM = 200  # well under the 255-byte file name limit, leaving room for the hash


def file_name(email: str) -> str:
    """A safe, stable .eml name for an address: the address itself when it is safe.

    Lower-cased, since addresses are matched case-insensitively. Any other
    character becomes '_' and a short hash of the address is added, so two
    addresses never share a file.
    """
    key = email.lower()
    stem = _UNSAFE.sub("_", key).lstrip(".")
    if stem != key or len(stem) > _MAX_STEM:
        digest = hashlib.sha256(key.encode()).hexdigest()[:10]
        stem = f"{stem[:_MAX_STEM]}-{digest}"
    return f"{stem}.eml"


def write_atomically(path: Path, data: bytes) -> None:
    """Write *data* to *path* so that the file is either whole or absent."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    # The rename is durable only once the folder's entry is on disk.
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class OutboxTransport(TransportBase):
    """Writes each recipient's message as ``<root>/<issue>/<recipient>.eml``."""

    name = "outbox"

    def __init__(self, root: Path, *, limiter: Limiter | None = None) -> None:
        self.root = root
        self._limiter = limiter or Unlimited()

    def path_for(self, batch: Batch, recipient: Recipient) -> Path:
        return self.root / batch.issue / file_name(recipient.email)

    def send(self, batch: Batch) -> list[Delivery]:
        folder = self.root / batch.issue
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            return [_failed(r, error) for r in batch.recipients]
        template = MessageTemplate(batch)
        results: list[Delivery] = []
        for recipient in batch.recipients:
            try:
                self._limiter.acquire()
            except StopWaiting:
                results += [_unsent(r) for r in batch.recipients[len(results) :]]
                break
            results.append(self._write(batch, template, recipient))
        return results

    def _write(self, batch: Batch, template: MessageTemplate, recipient: Recipient) -> Delivery:
        try:
            message = template.message(recipient)
        except HeaderInjectionError as error:
            return refused(recipient, error)
        data = message.data
        if recipient.return_path:  # as the receiving server would store it
            data = return_path_header(recipient.return_path) + data
        try:
            write_atomically(self.path_for(batch, recipient), data)
        except OSError as error:
            return _failed(recipient, error)
        return Delivery(
            email=recipient.email, state=DeliveryState.sent, message_id=message.message_id
        )


def _unsent(recipient: Recipient) -> Delivery:
    return Delivery(email=recipient.email, state=DeliveryState.failed, error=NOT_HANDED_OVER)


def _failed(recipient: Recipient, error: OSError) -> Delivery:
    return Delivery(
        email=recipient.email,
        state=DeliveryState.failed,
        error=f"could not write the outbox file: {error}",
    )
