"""Every error mailer raises on purpose, drawn once.

    MailerError                 root: catch this at the edges (CLI, web, scheduler)
    ├── ConfigError             mailer.toml or the environment is wrong
    ├── IssueFileError          an issue file has problems (carries every Problem found)
    ├── RenderError             an issue cannot be turned into email
    │   └── SizeBudgetError     a variant's HTML is over the hard size limit
    ├── SubscriberDataError     a CSV or an address is bad (carries every Problem found)
    ├── StoreError              the subscriber store cannot do what was asked
    │   └── SubscriberNotFound  no subscriber has that address
    ├── TokenError              a link token that is not one of ours (forged, damaged, wrong purpose)
    ├── RequestRefused          a web request refused; ``status`` is the HTTP answer
    │   ├── BadRequest              400: a body or form that does not parse
    │   ├── BodyTooLarge            413: a body over the size cap
    │   └── WebhookError            SendGrid's Event Webhook refused a request
    │       ├── WebhookSignatureError   403: signature missing, malformed, wrong, or too old
    │       └── WebhookPayloadError     400: the body is not a batch of SendGrid events
    ├── SendRefused             a send that must not start (issue not ready, another send running)
    ├── ReportError             a report that cannot be made (no such issue, or never sent)
    ├── BounceMailboxError      the bounce mailbox cannot be read (unreachable, login refused)
    └── DeliveryError           a transport could not hand a message on; the send stopped

Each message is written for the person at the keyboard: what went wrong, where,
and what to do next. The CLI prints ``str(error)`` and exits non-zero; it never
shows a traceback for a MailerError.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with an input file, pinned to its place: ``PATH:LINE: message``."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class MailerError(Exception):
    """Root of every error mailer raises on purpose."""

    exit_code = 1


class ConfigError(MailerError):
    """mailer.toml or an environment variable is missing or wrong."""

    exit_code = 2


class ProblemsError(MailerError):
    """An input file with one or more problems, all reported at once."""

    what = "input"

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = sorted(problems)
        super().__init__(self._summary())

    def _summary(self) -> str:
        lines = [str(problem) for problem in self.problems]
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        lines.append(f"{count} {noun} in {self.what}; nothing was changed.")
        return "\n".join(lines)


class IssueFileError(ProblemsError):
    """An issue file that does not validate."""

    what = "the issue file"


class RenderError(MailerError):
    """An issue that cannot be rendered into email."""


class SizeBudgetError(RenderError):
    """A variant whose HTML is so large that Gmail would clip it and hide the unsubscribe link."""

    def __init__(self, variant: str, size: int, limit: int) -> None:
        self.variant, self.size, self.limit = variant, size, limit
        super().__init__(
            f"variant '{variant}' is {size / 1000:.1f} KB of HTML, over the {limit / 1000:.0f} KB limit: "
            "Gmail clips messages near 102 KB and hides the footer with the unsubscribe link. "
            "Shorten the sections, use fewer images, or move long content to a web page and link to it."
        )


class SubscriberDataError(ProblemsError):
    """A subscriber CSV (or an address given on the command line) with problems."""

    what = "the subscriber data"


class StoreError(MailerError):
    """The subscriber store cannot do what was asked."""


class SubscriberNotFound(StoreError):
    """No subscriber has the given address."""

    def __init__(self, email: str) -> None:
        self.email = email
        super().__init__(
            f"no subscriber with the address {email!r}; "
            "`mailer subscribers list` shows who is on the list."
        )


class InvalidChoice(MailerError):
    """A member's own change (preference centre, sign-up form, API) that cannot be taken.

    ``field`` names what was wrong (``name``, ``region``, ``interests``, ...); the
    message is written for the member.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class TokenError(MailerError):
    """A token from a link that was not signed by us for this purpose (or is damaged)."""


class RequestRefused(MailerError):
    """A web request that is refused; ``status`` is what the web app answers.

    The message is for the log; the client only gets ``public``, a generic reason.
    """

    status = 400
    public = "bad request"


class BadRequest(RequestRefused):
    """A request body or form that does not parse."""


class BodyTooLarge(RequestRefused):
    """A body over the size cap; refused before it is read in full."""

    status = 413
    public = "the body is too large"


class WebhookError(RequestRefused):
    """A request to SendGrid's Event Webhook route that is refused."""


class WebhookSignatureError(WebhookError):
    """The request is not signed by SendGrid with the configured key, or the signature is too old."""

    status = 403
    public = "signature missing or not valid"


class WebhookPayloadError(WebhookError):
    """A correctly signed body that is not a JSON array of SendGrid events."""

    public = "the body is not a batch of events"


class SendRefused(MailerError):
    """A send that must not start: the issue is not ready, or another send of it is running."""


class ReportError(MailerError):
    """A report that cannot be made: no issue by that name, or one that was never sent."""


class BounceMailboxError(MailerError):
    """The bounce mailbox cannot be reached or read; nothing more was taken from it this time."""


class DeliveryError(MailerError):
    """A transport could not hand a message on; the send stopped and can be run again."""


def display_path(path: Path | str) -> str:
    """A path as the user would type it: relative to the working directory when it is below it."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)
