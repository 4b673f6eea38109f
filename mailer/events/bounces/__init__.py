"""The bounce mailbox: bounces, complaints and unsubscribes for mail that did not go through SendGrid.

Through SMTP, what comes back is mail: delivery status notifications (RFC 3464)
to the envelope sender, feedback-loop complaints (RFC 5965) to the address the
operator registered, and members writing to the ``mailto:`` in
``List-Unsubscribe``. With ``MAILER_BOUNCE_ADDRESS`` every message's envelope
sender names its member and issue (:mod:`mailer.verp`), so all of it lands in one
mailbox that ``mailer bounces fetch`` (and the scheduler) reads:

* :mod:`~mailer.events.bounces.mailboxes`: IMAP, POP3 or a Maildir, by URL.
* :mod:`~mailer.events.bounces.reading`: what a message says (pure), with
  :mod:`~mailer.events.bounces.dsn`, :mod:`~mailer.events.bounces.arf` and
  flufl.bounce for the free-text formats.
* :mod:`~mailer.events.bounces.attribution`: whose it is (the token, verified),
  as events in SendGrid's words, for the same rules (:mod:`mailer.events.rules`).
* :mod:`~mailer.events.bounces.fetch`: one run, each message applied and recorded
  in one transaction (:mod:`mailer.store.bouncelog`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mailer.events.bounces.fetch import FetchReport, fetch_bounces

__all__ = ["FetchReport", "fetch_bounces"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from mailer.events.bounces import fetch

        return getattr(fetch, name)
    raise AttributeError(f"module 'mailer.events.bounces' has no attribute {name!r}")
