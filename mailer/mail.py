"""What the stages hand each other about a message: the plain types every stage shares.

The contract, in one place:

* A :class:`Batch` is one rendered variant going to up to :data:`MAX_BATCH`
  recipients. Its :class:`Content` (subject, HTML, text) is a *template*: where a
  per-recipient value goes, it carries a placeholder, ``placeholder("first_name")`` =
  ``[[mailer:first_name]]``. :mod:`mailer.transports.variant` makes it from the
  renderer's compiled variant (``content_of``) and gives each recipient's values
  (``values_of``), fallbacks such as ``{{ first_name | friend }}`` resolved.
* Each :class:`Recipient` gives a value for every placeholder the content uses
  (checked when the batch is built), its own unsubscribe URL (sent as
  ``List-Unsubscribe`` with ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``,
  and a ``mailto:`` after it when there is one), optional extra headers, ``custom_args``
  (SendGrid returns them on every event) and an envelope sender of its own
  (``return_path``: SMTP's MAIL FROM and the outbox's Return-Path; see :mod:`mailer.verp`).
* A transport fills the placeholders the same way whatever it is: raw in the subject
  and the text, HTML-escaped in the HTML (:func:`personalise`). SendGrid does it with
  ``substitutions``; SMTP and the outbox do it themselves, so the outbox shows
  exactly what SendGrid would send.
* ``Transport.send`` returns one :class:`Delivery` per recipient, in order (its
  ``email`` exactly as the recipient's, never normalised), and does not raise for a
  delivery problem: a refused address, an exhausted retry, a wrong API key all come
  back as ``failed`` deliveries with the reason. ``unknown`` means the request went
  out and no answer came back, so the message may or may not have been accepted:
  the ledger must reconcile it (e.g. from webhook events, which carry
  ``custom_args``), not blindly resend it.
* :class:`DeliveryState` is one member's copy of one issue in the send ledger
  (``queued``, ``in_flight``, then ``sent``, ``failed`` or ``unknown``); a transport
  answers with the last three.

A leaf module: the store, the transports and the send all import it, and it imports
nothing of theirs.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Self

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from mailer.config import Sender
from mailer.headersafety import LINE_BREAK, HeaderInjectionError, header_safe

MAX_BATCH = 1000
"""Recipients per batch: SendGrid's limit of personalizations per request."""

MAX_CUSTOM_ARGS_BYTES = 10_000
"""SendGrid's limit on a message's custom_args, as JSON."""

_PLACEHOLDER_NAME = r"[a-z][a-z0-9_]*"
PLACEHOLDER = re.compile(r"\[\[mailer:(" + _PLACEHOLDER_NAME + r")\]\]")
_HEADER_NAME = re.compile(r"^[!-9;-~]+$")  # RFC 5322 ftext: printable ASCII but ':'

# Headers a caller may not set: the transports set them (or SendGrid forbids them).
# fmt: off
RESERVED_HEADERS = frozenset({
    "from", "to", "cc", "bcc", "subject", "reply-to", "date", "message-id", "mime-version",
    "content-type", "content-transfer-encoding", "list-id", "list-unsubscribe",
    "list-unsubscribe-post", "x-sg-id", "x-sg-eid", "received", "dkim-signature",
})
# fmt: on


def placeholder(name: str) -> str:
    """The marker a template carries where the recipient's value *name* goes."""
    if not re.fullmatch(_PLACEHOLDER_NAME, name):
        raise ValueError(f"placeholder name {name!r} must be lower case letters, digits and _")
    return f"[[mailer:{name}]]"


def placeholders_in(template: str) -> frozenset[str]:
    """The names of the placeholders a template uses."""
    return frozenset(PLACEHOLDER.findall(template))


def fill(template: str, values: Mapping[str, str], *, escape: bool) -> str:
    """The template with every placeholder replaced by its value, HTML-escaped when *escape*.

    One pass: a value that looks like a marker is not expanded again.
    """
    if escape:
        return PLACEHOLDER.sub(lambda m: html.escape(values[m[1]], quote=True), template)
    return PLACEHOLDER.sub(lambda m: values[m[1]], template)


TEXT_WIDTH = 72
# A line's lead: quote marks, indentation, then a list bullet.
_LEAD = re.compile(r"^((?:> ?)*)( *)((?:[-*+] |\d{1,3}\. )?)")
_UNDERLINE = re.compile(r"^[=~-]+$")


def wrap_text(text: str, width: int = TEXT_WIDTH, *, skip: str | None = None) -> str:
    """The plain-text part wrapped at ``width``, once the merge fields are filled in.

    Quotes and list items keep their lead ('> ', '- ', '1. ') and hang under it;
    indented code and titles over an underline are left as they are. Words are
    never broken, so a URL that does not fit goes on a line of its own, whole.
    Lines holding ``skip`` are left for later: the renderer wraps what is the same
    for everyone once, leaving the lines with a member's values (its placeholder
    tokens) to be wrapped per recipient, when only those lines are still long.
    """
    lines = text.split("\n")
    long = [index for index, line in enumerate(lines) if len(line) > width]
    if not long:
        return text
    last = len(lines) - 1
    for index in long:
        line = lines[index]
        if line.startswith("    ") or (skip is not None and skip in line):
            continue
        if index < last and _UNDERLINE.match(lines[index + 1]):
            continue  # a title: its underline is as long as it
        lines[index] = _wrap_line(line, width)
    return "\n".join(lines)


def _wrap_line(line: str, width: int) -> str:
    """One line filled greedily (a plain loop: textwrap took ten times as long)."""
    lead = _LEAD.match(line)
    assert lead is not None  # every part of the pattern may be empty
    hanging = lead[1] + lead[2] + " " * len(lead[3])
    lines: list[str] = []
    current = lead[0].rstrip(" ") if not line[lead.end() :].strip() else lead[0]
    fresh = True  # nothing after the lead yet: the next word goes on this line
    for word in line[lead.end() :].split():
        if fresh:
            current += word
            fresh = False
        elif len(current) + 1 + len(word) <= width:
            current += " " + word
        else:
            lines.append(current)
            current = hanging + word
    lines.append(current)
    return "\n".join(lines)


def personalised_text(content: Content, values: Mapping[str, str]) -> str:
    """The text part for one recipient: values raw, wrapped when the content asks."""
    text = fill(content.text, values, escape=False)
    return wrap_text(text) if content.wrap else text


def header_values(values: Mapping[str, str]) -> dict[str, str]:
    """Placeholder values as they may go into a header (the subject): see :func:`header_safe`."""
    return {name: header_safe(value) for name, value in values.items()}


def _no_line_breaks(value: str) -> str:
    if LINE_BREAK.search(value):
        raise ValueError("must not contain line breaks (they would end a mail header)")
    return value


def _check_headers(headers: dict[str, str]) -> dict[str, str]:
    for name, value in headers.items():
        if not _HEADER_NAME.match(name):
            raise ValueError(f"{name!r} is not a valid header name")
        if name.lower() in RESERVED_HEADERS:
            raise ValueError(f"header {name!r} is set by the transport and cannot be given")
        _no_line_breaks(value)
    return headers


def _check_address(value: str) -> str:
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as error:
        raise ValueError(f"{value!r} is not an email address: {error}") from None
    return value  # as given, not normalised: deliveries must match the caller's addresses


Address = Annotated[str, AfterValidator(_check_address)]
OneLine = Annotated[str, AfterValidator(_no_line_breaks)]
Headers = Annotated[dict[str, str], AfterValidator(_check_headers)]
HttpUrl = Annotated[str, StringConstraints(pattern=r"^https?://[^\s<>]+$")]
Mailto = Annotated[str, StringConstraints(pattern=r"^mailto:[^\s<>]+$")]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Content(_Frozen):
    """One variant's subject, HTML and text, with placeholder markers for per-recipient values."""

    subject: Annotated[OneLine, StringConstraints(min_length=1)]
    html: Annotated[str, StringConstraints(min_length=1)]
    text: Annotated[str, StringConstraints(min_length=1)]
    wrap: bool = Field(
        False,
        description="Wrap the text part at 72 characters once each recipient's values are in "
        "(the newsletter's, whose paragraphs come unwrapped); other mail is sent as written.",
    )

    # Cached: a transport asks once per recipient, and scanning a 100 KB HTML part
    # each time was most of the cost of a SendGrid batch. (Make a changed Content
    # with Content(...), not model_copy(update=...), which would copy the cache.)
    @cached_property
    def placeholders(self) -> frozenset[str]:
        return (
            placeholders_in(self.subject) | placeholders_in(self.html) | placeholders_in(self.text)
        )

    @cached_property
    def text_placeholders(self) -> tuple[str, ...]:
        """The placeholders the text part uses, sorted."""
        return tuple(sorted(placeholders_in(self.text)))

    @cached_property
    def html_placeholders(self) -> tuple[str, ...]:
        """The placeholders the HTML part uses, sorted."""
        return tuple(sorted(placeholders_in(self.html)))


class Recipient(_Frozen):
    """One member in a batch: address, placeholder values, unsubscribe link, event tags."""

    email: Address
    name: OneLine = ""
    values: dict[str, OneLine] = Field(
        default_factory=dict, description="A value for every placeholder the content uses."
    )
    unsubscribe_url: HttpUrl = Field(description="This member's one-click unsubscribe URL.")
    unsubscribe_mailto: Mailto | None = None
    return_path: Address | None = Field(
        None,
        description="The envelope sender (SMTP MAIL FROM, the outbox's Return-Path): a VERP "
        "address naming the member and the issue; the From address when None.",
    )
    headers: Headers = Field(
        default_factory=dict, description="Extra headers for this member only."
    )
    custom_args: dict[str, str] = Field(
        default_factory=dict,
        description="Tags SendGrid returns on every event, e.g. issue, subscriber.",
    )
    message_id: OneLine | None = Field(
        None,
        description="The Message-ID to send with, chosen before the message is handed over "
        "so that the send ledger has it even if the process dies before the answer (SMTP); "
        "a fresh one when None.",
    )

    @field_validator("custom_args")
    @classmethod
    def _custom_args_fit(cls, args: dict[str, str]) -> dict[str, str]:
        size = len(json.dumps(args, ensure_ascii=False).encode())
        if size > MAX_CUSTOM_ARGS_BYTES:
            limit = MAX_CUSTOM_ARGS_BYTES
            raise ValueError(f"custom_args are {size} bytes as JSON; SendGrid allows {limit}")
        return args

    @classmethod
    def trusted(
        cls,
        *,
        email: str,
        name: str,
        values: dict[str, str],
        unsubscribe_url: str,
        custom_args: dict[str, str],
        unsubscribe_mailto: str | None = None,
        return_path: str | None = None,
        message_id: str | None = None,
    ) -> Recipient:
        """A Recipient from values the caller has already checked, skipping validation.

        For the send's hot path: the address was validated when it entered the store,
        the links are ours, and validating (even ``model_construct``, which still
        walks every field) took a fifth of a send's time. Tests check that this makes
        what validation would.
        """
        recipient = cls.__new__(cls)
        fields = {
            "email": email,
            "name": name,
            "values": values,
            "unsubscribe_url": unsubscribe_url,
            "unsubscribe_mailto": unsubscribe_mailto,
            "return_path": return_path,
            "headers": {},
            "custom_args": custom_args,
            "message_id": message_id,
        }
        object.__setattr__(recipient, "__dict__", fields)
        object.__setattr__(recipient, "__pydantic_fields_set__", _RECIPIENT_FIELDS)
        object.__setattr__(recipient, "__pydantic_extra__", None)
        object.__setattr__(recipient, "__pydantic_private__", None)
        return recipient

    @property
    def list_unsubscribe(self) -> str:
        """The List-Unsubscribe header value: the URL first, then the mailto if any."""
        if self.unsubscribe_mailto:
            return f"<{self.unsubscribe_url}>, <{self.unsubscribe_mailto}>"
        return f"<{self.unsubscribe_url}>"


_RECIPIENT_FIELDS = frozenset(Recipient.model_fields)

Category = Annotated[
    str, StringConstraints(min_length=1, max_length=255, pattern=r"^[\x20-\x7e]+$")
]


class Batch(_Frozen):
    """One variant's content going to up to MAX_BATCH recipients."""

    issue: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")] = Field(
        description="The issue's slug: names the outbox folder; safe as a file name."
    )
    sender: Sender
    content: Content
    list_id: OneLine = Field(description="The List-Id header value: 'News <news.example.org>'.")
    recipients: list[Recipient] = Field(min_length=1, max_length=MAX_BATCH)
    headers: Headers = Field(default_factory=dict, description="Extra headers for every recipient.")
    categories: list[Category] = Field(default_factory=list, max_length=10)

    @model_validator(mode="after")
    def _recipients_fit(self) -> Self:
        # Every batch of a send passes through here: the common case, all fine, is checked
        # with as little work per recipient as can be; the first culprit found only if not.
        recipients, needed = self.recipients, self.content.placeholders
        if (
            len({recipient.email.lower() for recipient in recipients}) == len(recipients)
            and all(needed <= recipient.values.keys() for recipient in recipients)
            and not (self.headers and any(recipient.headers for recipient in recipients))
        ):
            return self
        seen: set[str] = set()
        ours = {name.lower() for name in self.headers}
        for recipient in recipients:
            key = recipient.email.lower()
            if key in seen:
                raise ValueError(f"{recipient.email} is in the batch twice")
            seen.add(key)
            missing = needed - recipient.values.keys()
            if missing:
                names = ", ".join(sorted(missing))
                raise ValueError(f"{recipient.email} has no value for placeholder(s) {names}")
            clash = recipient.headers and {n.lower() for n in recipient.headers} & ours
            if clash:
                names = ", ".join(sorted(clash))
                raise ValueError(f"{recipient.email} sets header(s) {names}, as the batch does")
        return self


class Personalised(_Frozen):
    """One recipient's subject, HTML and text, with every placeholder filled."""

    subject: str
    html: str
    text: str


def personalise(content: Content, values: Mapping[str, str]) -> Personalised:
    """The content for one recipient: values raw in subject and text, escaped in HTML; the
    text wrapped once they are in when the content asks (:func:`wrap_text`)."""
    return Personalised(
        subject=fill(content.subject, values, escape=False),
        html=fill(content.html, values, escape=True),
        text=personalised_text(content, values),
    )


class DeliveryState(StrEnum):
    """Where one member's copy of one issue stands (a transport answers the last three)."""

    queued = "queued"
    in_flight = "in_flight"
    sent = "sent"
    failed = "failed"
    unknown = "unknown"


@dataclass(frozen=True, slots=True)
class Delivery:
    """What became of one recipient's message.

    ``sent``: the server or API accepted it. ``failed``: it was not sent (``error``
    says why; ``permanent`` when the address itself was refused, so retrying will
    not help). ``unknown``: it was handed over but no answer came back; it may
    have been accepted, so reconcile before sending again.

    A plain dataclass, not a pydantic model: transports make one per recipient
    from values of their own, and validating each took a tenth of a send's time.
    """

    email: str
    state: DeliveryState
    message_id: str | None = None
    error: str | None = None
    permanent: bool = False

    @property
    def ok(self) -> bool:
        return self.state == DeliveryState.sent


def failed(batch: Batch, error: str) -> list[Delivery]:
    """Every recipient of the batch as failed for the same reason."""
    return [
        Delivery(email=r.email, state=DeliveryState.failed, error=error) for r in batch.recipients
    ]


def refused(recipient: Recipient, error: HeaderInjectionError) -> Delivery:
    """A recipient whose message failed the last header check: never sent, never retried."""
    return Delivery(
        email=recipient.email, state=DeliveryState.failed, error=str(error), permanent=True
    )
