"""Batches to send in the transport tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from mailer.config import Sender
from mailer.mail import Batch, Content, Recipient, placeholder
from mailer.transports.message import list_id

SENDER = Sender(
    name="Connected Communities", email="news@example.org", reply_to="editor@example.org"
)
CONTENT = Content(
    subject=f"Hello {placeholder('first_name')}: the winter issue",
    html=(
        f"<p>Dear {placeholder('first_name')},</p><p>News.</p>"
        f'<a href="{placeholder("unsubscribe_url")}">Unsubscribe</a>'
    ),
    text=f"Dear {placeholder('first_name')},\n\nNews.\n\nUnsubscribe: {placeholder('unsubscribe_url')}\n",
)


def recipient(index: int, **overrides: Any) -> Recipient:
    """Member number *index*, with their own name, unsubscribe link and custom_args."""
    url = f"https://news.example.org/unsubscribe/tok{index}"
    fields: dict[str, Any] = {
        "email": f"member{index}@example.com",
        "name": f"Member {index}",
        "values": {"first_name": f"Member{index}", "unsubscribe_url": url},
        "unsubscribe_url": url,
        "custom_args": {"issue": "2026-01-08-winter", "subscriber": str(index)},
    }
    return Recipient(**{**fields, **overrides})


def batch(count: int = 3, *, recipients: list[Recipient] | None = None, **overrides: Any) -> Batch:
    """A batch of the winter issue to *count* members (or the recipients given)."""
    fields: dict[str, Any] = {
        "issue": "2026-01-08-winter",
        "sender": SENDER,
        "content": CONTENT,
        "list_id": list_id("Connected Communities", "news.example.org"),
        "recipients": recipients
        if recipients is not None
        else [recipient(i) for i in range(count)],
    }
    return Batch(**{**fields, **overrides})


@pytest.fixture
def make_batch() -> Callable[..., Batch]:
    return batch


@pytest.fixture
def make_recipient() -> Callable[..., Recipient]:
    return recipient
