"""mailer: fortnightly newsletters kept as files, sent exactly once.

The entry points for embedding mailer in another program, loaded on first use:

* configuration: :class:`Settings` (the environment), :class:`Newsletter` and
  :func:`load_newsletter` (``mailer.toml``);
* stage 1, the issue file: :func:`load_issue`, :func:`check_issue`;
* stage 2, rendering: :func:`render_issue`;
* the subscriber list: :func:`open_store`;
* stage 4, sending: :func:`send_issue` (what ``mailer send ISSUE --yes`` does),
  :func:`open_transport`;
* stage 5, events back: :func:`parse_events` (a verified Event Webhook body),
  :func:`apply_events`;
* :class:`MailerError`, the root of every error mailer raises on purpose.

For example, checking an issue file as ``mailer validate`` does:

>>> from pathlib import Path
>>> import mailer
>>> root = Path(mailer.__file__).parent.parent
>>> newsletter = mailer.load_newsletter(root / "mailer.toml")
>>> check = mailer.check_issue(root / "issues" / "2026-12-03-winter-connections.yaml", newsletter)
>>> (check.ok, check.issue.status)
(True, 'ready')

Everything else is importable from its stage's package (see docs/architecture.md).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mailer.config import Newsletter, Settings, load_newsletter
    from mailer.errors import MailerError
    from mailer.events.apply import apply_events
    from mailer.events.sendgrid import parse as parse_events
    from mailer.issues.check import check_issue, load_issue
    from mailer.render.build import render_issue
    from mailer.sending.send import send_issue
    from mailer.store.subscribers import open_store
    from mailer.transports import open_transport

__version__ = "0.1.0"

__all__ = [
    "MailerError",
    "Newsletter",
    "Settings",
    "__version__",
    "apply_events",
    "check_issue",
    "load_issue",
    "load_newsletter",
    "open_store",
    "open_transport",
    "parse_events",
    "render_issue",
    "send_issue",
]

# Where each public name lives, as (module, name there).
_HOMES = {
    "MailerError": ("mailer.errors", "MailerError"),
    "Newsletter": ("mailer.config", "Newsletter"),
    "Settings": ("mailer.config", "Settings"),
    "apply_events": ("mailer.events.apply", "apply_events"),
    "check_issue": ("mailer.issues.check", "check_issue"),
    "load_issue": ("mailer.issues.check", "load_issue"),
    "load_newsletter": ("mailer.config", "load_newsletter"),
    "open_store": ("mailer.store.subscribers", "open_store"),
    "open_transport": ("mailer.transports", "open_transport"),
    "parse_events": ("mailer.events.sendgrid", "parse"),
    "render_issue": ("mailer.render.build", "render_issue"),
    "send_issue": ("mailer.sending.send", "send_issue"),
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'mailer' has no attribute {name!r}")
    module, attribute = home
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # the next access is a plain lookup
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
