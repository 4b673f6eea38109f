"""Reading what the outbox transport wrote: one .eml file a message, a folder an issue."""

from __future__ import annotations

import email
import email.policy
from collections import Counter
from email.message import EmailMessage
from pathlib import Path


def read_eml(path: Path) -> EmailMessage:
    """One .eml file, parsed as a mail client would."""
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def outbox_files(folder: Path) -> dict[str, EmailMessage]:
    """Each .eml in a folder, parsed, by its recipient's address."""
    return {
        str(read_eml(path)["To"].addresses[0].addr_spec): read_eml(path)
        for path in sorted(folder.glob("*.eml"))
    }


def outbox_folders(outbox: Path) -> dict[str, int]:
    """Each folder of the outbox (an issue, or a notice) and how many .eml files it has."""
    if not outbox.is_dir():
        return {}
    return {d.name: len(list(d.glob("*.eml"))) for d in sorted(outbox.iterdir()) if d.is_dir()}


def recipients(folder: Path) -> Counter[str]:
    """How many messages each address has in an outbox folder."""
    return Counter(
        str(read_eml(path)["To"].addresses[0].addr_spec) for path in sorted(folder.glob("*.eml"))
    )
