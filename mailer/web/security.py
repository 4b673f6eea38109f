"""What keeps the pages safe: response headers, form tokens against forged posts, capped bodies.

* Every response gets ``Referrer-Policy: no-referrer`` (a link token must never
  leak to another site through a Referer), ``X-Frame-Options: DENY``,
  ``X-Content-Type-Options: nosniff`` and a strict Content-Security-Policy with
  no script at all (the pages work without JavaScript). A route may set its own
  CSP (the archive, whose email HTML needs inline styles, still without script).
* Forms carry a **form token**: an HMAC-signed, time-limited value bound to the
  form's purpose and to the page's link token, checked on POST. The RFC 8058
  one-click POST from a mailbox provider carries none and needs none: the link
  token is the credential there, as the RFC intends. No cookies are set.
* Request bodies are read with a cap, so a huge body is refused (413) before it
  is held in memory.
* ``GET`` and ``HEAD`` (:data:`READ_ONLY`; Starlette answers HEAD on every GET
  route) never change anything, whatever they carry: mail scanners open every
  link in an email. Routes test ``request.method in READ_ONLY``, never
  ``== "GET"``, so a HEAD cannot fall through to the POST branch.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncGenerator, Sequence
from urllib.parse import parse_qsl

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer
from starlette.datastructures import FormData, Headers, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mailer.errors import BadRequest, BodyTooLarge, TokenError
from mailer.store import Subscriber
from mailer.store.signups import CONFIRM_DAYS
from mailer.tokens import LinkRef, TokenSigner

__all__ = [
    "CSP",
    "FORM_BODY",
    "READ_ONLY",
    "AddressChangeTokens",
    "ConfirmTokens",
    "FormTokens",
    "SecurityHeaders",
    "parse_form",
    "read_body",
]

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
FORM_BODY = 16 * 1024  # no form of ours comes near this
FORM_MAX_AGE = 6 * 3600  # seconds a page's form token stays good
READ_ONLY = frozenset({"GET", "HEAD"})  # methods that only show a page
_HEADERS = (
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"content-security-policy", CSP.encode()),
)


HSTS = (b"strict-transport-security", b"max-age=31536000")  # a year: browsers keep to https


class SecurityHeaders:
    """ASGI middleware adding the headers above to every response that lacks them.

    With ``hsts`` (MAILER_BASE_URL is https), also Strict-Transport-Security, so a
    browser that has been to the site never goes to it over plain HTTP again.
    """

    def __init__(self, app: ASGIApp, *, hsts: bool = False) -> None:
        self.app = app
        self._headers = (*_HEADERS, HSTS) if hsts else _HEADERS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(name, value) for name, value in self._headers if name not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)


class FormTokens:
    """Signed, time-limited form tokens, bound to a purpose and a link token."""

    def __init__(self, keys: Sequence[str], *, max_age: int = FORM_MAX_AGE) -> None:
        # itsdangerous signs with the last key: the first configured goes last.
        self._serializer = URLSafeTimedSerializer(list(reversed(keys)), salt="mailer.form")
        self.max_age = max_age

    @staticmethod
    def _bind(link_token: str) -> str:
        # A digest, so the form token does not repeat the link token.
        return hashlib.sha256(link_token.encode()).hexdigest()[:32]

    def issue(self, purpose: str, link_token: str = "") -> str:
        return self._serializer.dumps([purpose, self._bind(link_token)])

    def check(self, form_token: str | None, purpose: str, link_token: str = "") -> bool:
        if not form_token or len(form_token) > 500:
            return False
        try:
            value = self._serializer.loads(form_token, max_age=self.max_age)
        except BadData:
            return False
        return bool(value == [purpose, self._bind(link_token)])


class ConfirmTokens:
    """Signed, expiring tokens for confirmation links: (the member's reference, a binding).

    The reference is the opaque one every link carries (:meth:`TokenSigner.reference`):
    no id and no address shows in the link.
    """

    def __init__(self, keys: list[str], signer: TokenSigner) -> None:
        self._serializer = URLSafeTimedSerializer(list(reversed(keys)), salt="mailer.confirm")
        self._signer = signer

    @staticmethod
    def _bind(member: Subscriber) -> str:
        # No readable address in the link: a digest of it, and of when the status last changed.
        seed = f"{member.email.lower()}|{member.status_changed_at.isoformat()}"
        return hashlib.sha256(seed.encode()).hexdigest()[:24]

    def token(self, member: Subscriber) -> str:
        reference = self._signer.reference(member.id, member.link_version)
        return self._serializer.dumps([reference, self._bind(member)])

    def read(self, token: str) -> tuple[LinkRef, str]:
        """(who, binding); SignatureExpired when too old, TokenError when not ours."""
        try:
            value = self._serializer.loads(token, max_age=CONFIRM_DAYS * 86400)
        except SignatureExpired:
            raise
        except BadData:
            raise TokenError("this confirmation link is not one of ours") from None
        if (
            not isinstance(value, list)
            or len(value) != 2
            or not isinstance(value[0], str)
            or not isinstance(value[1], str)
        ):
            raise TokenError("this confirmation link is not one of ours")
        return self._signer.dereference(value[0]), value[1]

    def matches(self, member: Subscriber, binding: str) -> bool:
        return self._bind(member) == binding


class AddressChangeTokens:
    """Encrypted, expiring tokens for the link that confirms a member's new address.

    The token carries the new address, so it is encrypted (Fernet: AES with an
    HMAC, and a timestamp) rather than only signed: neither address shows in the
    link. It is bound to the member's current address, so once the address has
    changed (by this link or another) the link does nothing more.
    """

    def __init__(self, keys: list[str], signer: TokenSigner) -> None:
        self._fernet = MultiFernet([Fernet(self._key(key)) for key in keys])
        self._signer = signer

    @staticmethod
    def _key(secret: str) -> bytes:
        digest = hashlib.sha256(b"mailer.address-change\0" + secret.encode()).digest()
        return base64.urlsafe_b64encode(digest)

    @staticmethod
    def _bind(email: str) -> str:
        return hashlib.sha256(email.lower().encode()).hexdigest()[:24]

    def token(self, member: Subscriber, new_email: str) -> str:
        reference = self._signer.reference(member.id, member.link_version)
        payload = json.dumps([reference, self._bind(member.email), new_email])
        return self._fernet.encrypt(payload.encode()).decode("ascii")

    def read(self, token: str) -> tuple[LinkRef, str, str]:
        """(who, binding, the new address); TokenError when not ours or expired."""
        try:
            payload = self._fernet.decrypt(token.encode("ascii"), ttl=CONFIRM_DAYS * 86400)
            value = json.loads(payload)
        except (InvalidToken, UnicodeError, ValueError):
            raise TokenError("this address confirmation link is not ours or has expired") from None
        if not (
            isinstance(value, list) and len(value) == 3 and all(isinstance(v, str) for v in value)
        ):
            raise TokenError("this address confirmation link is not one of ours")
        return self._signer.dereference(value[0]), value[1], value[2]

    def matches(self, member: Subscriber, binding: str) -> bool:
        return self._bind(member.email) == binding


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with BodyTooLarge past ``limit`` bytes (before reading it all)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise BadRequest("the Content-Length header is not a number")
        if int(declared) > limit:
            raise BodyTooLarge(f"the body is {declared} bytes, over the {limit} byte cap")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"the body is over the {limit} byte cap")
        chunks.append(chunk)
    return b"".join(chunks)


async def parse_form(headers: Headers, body: bytes) -> FormData:
    """A form body, URL-encoded or multipart (RFC 8058 allows both); anything else reads as empty.

    Raises BadRequest for a multipart body that does not parse.
    """
    content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type == "multipart/form-data":

        async def stream() -> AsyncGenerator[bytes, None]:
            yield body

        try:
            parser = MultiPartParser(
                headers, stream(), max_files=0, max_fields=50, max_part_size=FORM_BODY
            )
            return await parser.parse()
        except MultiPartException as error:
            raise BadRequest(f"the form does not parse: {error.message}") from None
    if content_type in ("application/x-www-form-urlencoded", ""):
        try:
            pairs = parse_qsl(
                body.decode("latin-1"),
                keep_blank_values=True,
                encoding="utf-8",
                errors="replace",
                max_num_fields=50,
            )
        except ValueError:
            raise BadRequest("the form has too many fields") from None
        return FormData(list[tuple[str, str | UploadFile]](pairs))
    return FormData()
