"""Fixtures over the real mail servers, registered for the whole suite by tests/conftest.py.

* ``mail_servers``: Postfix and Dovecot, started once for the whole run (a few
  seconds), stopped at its end.
* ``bounce_mailbox``: a bounce mailbox of the test's own on them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .mail import BounceMailbox, MailServers


@pytest.fixture(scope="session")
def mail_servers() -> Iterator[MailServers]:
    with MailServers() as servers:
        yield servers


@pytest.fixture
def bounce_mailbox(mail_servers: MailServers) -> BounceMailbox:
    return mail_servers.bounce_mailbox()
