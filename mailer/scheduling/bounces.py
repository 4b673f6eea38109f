"""The scheduler's bounce job: read the bounce mailbox every few minutes, never failing the scheduler.

:class:`BouncePoller` runs :func:`mailer.events.bounces.fetch_bounces` once per
call. A mailbox that is down, a refused login or a database that is busy is
reported in the log (with how many tries in a row have failed) and tried again at
the next interval (``MAILER_BOUNCE_POLL_INTERVAL``); nothing is lost meanwhile, as
the messages wait in the mailbox. Each run stops between batches when the
scheduler is asked to stop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from mailer.config import Settings
from mailer.errors import MailerError
from mailer.events.bounces.fetch import FetchReport, fetch_bounces
from mailer.store import SubscriberStore

__all__ = ["BouncePoller"]

log = logging.getLogger("mailer.scheduler")


@dataclass
class BouncePoller:
    """Reads the bounce mailbox when called; never raises."""

    settings: Settings
    store: SubscriberStore
    should_stop: Callable[[], bool] = lambda: False
    failures: int = 0  # tries in a row that could not read the mailbox

    def poll(self) -> FetchReport | None:
        """One read of the mailbox; None when it could not be read (logged, tried again later)."""
        try:
            report = fetch_bounces(self.settings, self.store, should_stop=self.should_stop)
        except MailerError as error:
            self._failed(str(error))
            return None
        except Exception as error:  # a bug must not stop the scheduler either
            log.exception("reading the bounce mailbox failed unexpectedly")
            self._failed(f"{type(error).__name__}: {error}")
            return None
        if self.failures:
            log.info("bounce mailbox read again after %d failed tries", self.failures)
        self.failures = 0
        if report.messages:
            log.info(
                "bounce mailbox: %d new message(s), changes %s",
                len(report.messages),
                report.status_changes or "none",
            )
        return report

    def _failed(self, reason: str) -> None:
        self.failures += 1
        log.warning(
            "bounce mailbox not read (%d time(s) in a row; trying again in %d s): %s",
            self.failures,
            self.settings.bounce_poll_interval,
            reason,
        )
