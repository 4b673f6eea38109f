"""Email addresses: checked with email-validator (syntax only), normalised, keyed.

Three forms of an address are used:

* the **normalised** address, email-validator's ``normalized`` form: surrounding
  space stripped, the domain lower-cased and in Unicode (IDNA decoded), the local
  part NFC-normalised but otherwise kept as the member wrote it. This is what is
  stored, shown and mailed to.
* the **key**: the normalised address lower-cased. Uniqueness and look-ups use it,
  so ``Jane@Example.org`` and ``jane@example.org`` are the same member.
* the **suppression hash**: SHA-256 of the key, kept after a member is forgotten so
  that the address cannot be added back, without keeping the address itself.

Validating the domain is most of email-validator's work, and a list has far fewer
domains than addresses, so plain ASCII addresses take a fast path that validates
each domain once (with email-validator) and the local part with the same rule
email-validator applies to unquoted ASCII local parts. Anything else, and every
address the fast path would reject, goes through ``validate_email`` itself, so
results and messages are email-validator's. ``tests/store/test_emails.py`` checks
the two paths agree.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache

from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES

MAX_LENGTH = 254  # RFC 5321 path limit less the angle brackets, as email-validator counts it
_MAX_LOCAL = 64
# RFC 5322 dot-atom over ASCII atext: what email-validator accepts unquoted.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_SIMPLE_LOCAL = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*\Z")
_LOWERCASED_MAILBOXES = frozenset(CASE_INSENSITIVE_MAILBOX_NAMES)


class InvalidEmail(ValueError):
    """An address that is not valid, with a message that quotes it."""

    def __init__(self, raw: str, reason: str) -> None:
        self.raw, self.reason = raw, reason
        super().__init__(f"{raw!r} is not a valid email address: {reason}")


@dataclass(frozen=True, slots=True)
class NormalisedEmail:
    """A checked address in its stored form, with its look-up key."""

    email: str

    @property
    def key(self) -> str:
        return email_key(self.email)


def email_key(normalised: str) -> str:
    """The case-insensitive key of an already normalised address."""
    return normalised.lower()


def address_key(raw: str) -> str:
    """The key of an address as anyone gave it (an event, a bounce, a form): its one normal form.

    ``Info@xn--exmple-cua.org`` and ``info@EXÄMPLE.org`` both give ``info@exämple.org``,
    the key of the member stored as ``info@exämple.org``. Text that is no valid address
    is only stripped and lower-cased: it matches no member, whose addresses are all valid.
    """
    plain = raw.strip()
    if plain.isascii() and "xn--" not in plain.lower():
        return plain.lower()  # what normalising then lower-casing gives (a webhook's hot path)
    try:
        return normalise_email(plain).key
    except InvalidEmail:
        return plain.lower()


def suppression_hash(key: str) -> str:
    """SHA-256 (hex) of an address key: what remains of a forgotten member."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def normalise_email(raw: str) -> NormalisedEmail:
    """Check ``raw`` (syntax only, no network) and return its normalised form.

    Raises :class:`InvalidEmail` with email-validator's reason.
    """
    raw = raw.strip()
    fast = _fast_normalise(raw)
    if fast is not None:
        return NormalisedEmail(fast)
    try:
        checked = validate_email(raw, check_deliverability=False)
    except EmailNotValidError as error:
        raise InvalidEmail(raw, _as_clause(str(error))) from None
    return NormalisedEmail(checked.normalized)


def _fast_normalise(raw: str) -> str | None:
    """The normalised address for a plain ASCII address, or None to take the full path."""
    local, at, domain = raw.rpartition("@")
    if not at or len(local) > _MAX_LOCAL or not _SIMPLE_LOCAL.match(local):
        return None
    forms = _domain_forms(domain)
    if forms is None:
        return None
    if local.lower() in _LOWERCASED_MAILBOXES:  # RFC 2142 names, lower-cased by email-validator too
        local = local.lower()
    normalised = f"{local}@{forms[0]}"
    if raw.isascii() and normalised.isascii():  # the usual case: the ASCII form is the same
        too_long = max(len(raw), len(normalised)) > MAX_LENGTH
    else:  # email-validator counts UTF-8 bytes of each form
        ascii_form = f"{local}@{forms[1]}"
        too_long = max(_utf8_len(raw), _utf8_len(normalised), len(ascii_form)) > MAX_LENGTH
    return None if too_long else normalised


@lru_cache(maxsize=65536)
def _domain_forms(domain: str) -> tuple[str, str] | None:
    """(Unicode, ASCII) forms of a valid domain, as email-validator gives them; None if invalid."""
    try:
        checked = validate_email(f"a@{domain}", check_deliverability=False)
    except EmailNotValidError:
        return None
    return checked.domain, checked.ascii_domain


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def _as_clause(message: str) -> str:
    """email-validator's sentence as a clause: 'There must be ...' -> 'there must be ...'."""
    message = message.strip().rstrip(".")
    return message[:1].lower() + message[1:]


# Providers that ignore dots in the local part: ann.lee@gmail.com is annlee@gmail.com.
_DOTLESS_DOMAINS = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}


def mailbox_key(normalised: str) -> str:
    """The mailbox a person owns, as far as mail to an address reaches it.

    Case-folded, the ``+tag`` of sub-addressing dropped (``ann+news@`` reaches
    ``ann@``), and for Gmail the dots of the local part too. For counting requests
    per person (the sign-up form's limit), never for storing or sending.
    """
    local, _, domain = normalised.casefold().rpartition("@")
    local = local.split("+", 1)[0] or local
    if domain in _DOTLESS_DOMAINS:
        local, domain = local.replace(".", ""), _DOTLESS_DOMAINS[domain]
    return f"{local}@{domain}"
