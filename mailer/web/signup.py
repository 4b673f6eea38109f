"""Joining the list: the sign-up form, double opt-in by email, and the confirmation link.

``POST /subscribe`` never says whether an address is on the list: every
accepted request gets the same "check your inbox" page, and what happens next
goes to the address itself:

* a new address is added as ``pending`` and sent a confirmation link;
* a pending or unsubscribed member is sent a confirmation link (confirming
  re-subscribes them, logged as their explicit request);
* an active member is told by email that they are already subscribed, with a
  link to their preference centre;
* an address that complained, bounced or was forgotten is sent nothing: only
  ``mailer subscribers resubscribe`` brings one back, when the person asks.

The confirmation email holds nothing the requester typed, not even the address,
except a first name that plainly is one (:func:`greeting_name`): the form cannot
make the newsletter say more than "Hello Ann" to anyone. A name is kept with the
sign-up, and used once it is confirmed; sign-ups never confirmed
are deleted with it when their link expires
(:func:`mailer.store.signups.purge_unconfirmed`, which ``mailer serve`` runs hourly).

Against abuse: a honeypot field that people never see (a bot that fills it gets
the same page and nothing happens), a form token, an optional CAPTCHA
(:mod:`mailer.web.captcha`), and limits: per mailbox (``ann+1@`` and ``Ann@`` are
one person's; over it, the page is the same but no email goes out, so nobody can
flood an inbox), per client (an IPv4 address or an IPv6 /64; over it, a 429 page),
and on confirmation emails in all (MAILER_SIGNUP_EMAILS_PER_HOUR), which bounds
the worst case whatever the attacker's addresses.

Confirmation links are signed and expire after :data:`CONFIRM_DAYS` days; each
is bound to the member's status at the time it was sent, so an old link cannot
re-subscribe someone who has since unsubscribed. Opening the link (``GET``)
changes nothing: mail scanners such as Safe Links open every link in an email,
and would otherwise confirm sign-ups nobody asked for. The page it opens has a
"Confirm my subscription" button, whose ``POST`` (with the page's form token)
activates the member. No page reached from a confirmation or unsubscribe link
hands out another link of the member's.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import re
from dataclasses import dataclass, replace
from typing import Any

from itsdangerous import SignatureExpired
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from mailer.audience.choices import Choices, check_choices, record_for
from mailer.config import Newsletter
from mailer.errors import InvalidChoice, MailerError, StoreError, SubscriberNotFound, TokenError
from mailer.headersafety import one_line
from mailer.mail import Batch, Content, Recipient
from mailer.store import Subscriber, SubscriberStatus
from mailer.store.emails import InvalidEmail, mailbox_key, normalise_email
from mailer.store.signups import CONFIRM_DAYS, attempt, limit_key
from mailer.tokens import Purpose
from mailer.transports.message import list_id
from mailer.web import metrics
from mailer.web.context import WebContext, context_of
from mailer.web.pages import masked
from mailer.web.security import CSP, FORM_BODY, READ_ONLY, parse_form, read_body

__all__ = ["client_key", "confirm", "send_confirmation", "subscribe"]

log = logging.getLogger(__name__)

SOURCE = "web sign-up"
OUTBOX_FOLDER = "confirmations"  # the Batch "issue": names the outbox folder


# -- the form -------------------------------------------------------------------------------


async def subscribe(request: Request) -> Response:
    """GET: the sign-up form. POST: start a double opt-in (see the module docstring)."""
    web = context_of(request)
    if request.method in READ_ONLY:
        return _form(web)
    form = await parse_form(request.headers, await read_body(request, FORM_BODY))
    email_given = _text(form.get("email"))[:320]
    name = one_line(_text(form.get("name")))[:200]
    given = _Given(
        name=name,
        organisation=one_line(_text(form.get("organisation")))[:200],
        region=_text(form.get("region"))[:100],
        interests=frozenset(v for v in form.getlist("interest") if isinstance(v, str)),
    )
    if not web.forms.check(_text(form.get("form_token")), "subscribe"):
        return _form(web, email_given, given, "The form had expired. Please send it again.", 400)
    try:
        # An encoded-word ("=?utf-8?q?...?=") in a name is a header injection attempt;
        # a NUL is no part of a name, and PostgreSQL cannot store it.
        choices = check_choices(
            web.newsletter,
            name=given.name,
            organisation=given.organisation,
            region=given.region,
            interests=given.interests,
        )
    except InvalidChoice as problem:
        log.info("sign-up refused: %s", problem.field)
        if problem.field in ("name", "organisation"):
            message = f"Please write your {problem.field} as plain text."
        else:
            message = f"Please check the {problem.field}: {problem}."
        return _form(web, email_given, given.without(problem.field), message, 400)
    client = client_key(request.client.host if request.client else "unknown")
    if _text(form.get("website")):
        log.info("sign-up ignored: the honeypot field was filled in")
        metrics.signup("honeypot")
        # Counted like any sign-up: the same work, so the same time, as a real one.
        await run_in_threadpool(_count_attempt, web, email_given.lower(), client)
        return _sent(web)
    try:
        if "\x00" in email_given:
            raise InvalidEmail(email_given, "it holds a NUL character")
        address = normalise_email(email_given).email
    except InvalidEmail:
        return _form(
            web, email_given, given, "Please enter an email address like name@example.org.", 400
        )
    if web.captcha is not None and not await run_in_threadpool(web.captcha.verify, form, client):
        log.info("sign-up refused: the CAPTCHA was not passed")
        metrics.signup("refused")
        return _form(
            web, email_given, given, "Please complete the check below the form, then send it.", 400
        )
    over = await run_in_threadpool(_count_attempt, web, address, client)
    if "client" in over:
        log.warning("sign-up refused: too many from one client")
        metrics.signup("refused")
        return web.pages.message(
            "Too many sign-ups",
            ["We have had a lot of sign-ups from your connection. Please try again in an hour."],
            status=429,
        )
    sent = _sent(web)
    metrics.signup("requested")
    if "address" in over:
        log.info("sign-up: no email sent, too many requests for one mailbox")
    else:
        # After the answer has gone: what happens depends on whether the address is on
        # the list, and the time it takes would tell anyone who measured (see below).
        web.signups_in_flight += 1
        sent.background = BackgroundTask(_opt_in_later, web, address, choices)
    return sent


async def _opt_in_later(web: WebContext, address: str, choices: Choices) -> None:
    """The sign-up's work, done once the page has been answered.

    A new, an active, a forgotten and a complained address each need different work
    (an insert, an email, nothing): done before the answer, its time would say which
    one an address is. A failure is the log's, since the page has gone.
    """
    try:
        await run_in_threadpool(_start_opt_in, web, address, choices)
    except MailerError as error:
        log.error("sign-up: could not send the email: %s", error)
    finally:
        web.signups_in_flight -= 1


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


@dataclass(frozen=True)
class _Given:
    """What the form was sent with, to show it again when it is refused."""

    name: str = ""
    organisation: str = ""
    region: str = ""
    interests: frozenset[str] = frozenset()

    def without(self, field: str) -> _Given:
        """The same, with the field that was refused left empty."""
        if field == "interests":
            return replace(self, interests=frozenset())
        if field == "name":
            return replace(self, name="")
        if field == "organisation":
            return replace(self, organisation="")
        return replace(self, region="") if field == "region" else self


def _form(
    web: WebContext,
    email: str = "",
    given: _Given | None = None,
    error: str = "",
    status: int = 200,
    *,
    template: str = "subscribe.html",
    **page: Any,
) -> Response:
    """The sign-up form; ``template`` and ``page`` for pages that extend it (the home page)."""
    given = given or _Given()
    captcha = web.captcha
    return web.pages.page(
        template,
        status=status,
        headers={"Content-Security-Policy": captcha.csp(CSP)} if captcha else None,
        title=page.pop("title", f"Subscribe to {web.newsletter.name}"),
        **page,
        email=email,
        choices=given,
        regions=web.newsletter.regions,
        interests_offered=web.newsletter.choosable_segments,
        error=error,
        captcha=captcha,
        form_token=web.forms.issue("subscribe"),
    )


def signup_page(web: WebContext, template: str, **page: Any) -> Response:
    """A page that extends the sign-up form's (``subscribe.html``), with an empty form."""
    return _form(web, template=template, **page)


def _sent(web: WebContext) -> Response:
    return web.pages.message(
        "Check your inbox",
        [
            "If the address can receive email, a message from us is on its way. "
            f"Open the link in it within {CONFIRM_DAYS} days and press the button on the page "
            "it opens to finish.",
            "Nothing there after a few minutes? Look in your spam or junk folder.",
        ],
        links=[("Back to the sign-up form", "/subscribe")],
    )


def client_key(host: str) -> str:
    """Who a request comes from, for the per-client limit: an IPv4 address, or an IPv6 /64.

    One IPv6 host usually has a whole /64 to itself, so counting single IPv6
    addresses would give it 2**64 quotas.
    """
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def _count_attempt(web: WebContext, address: str, client: str) -> set[str]:
    limits = web.limits
    keys = {
        limit_key("address", mailbox_key(address)): ("address", limits.per_address),
        limit_key("client", client): ("client", limits.per_client),
    }
    over = attempt(
        web.store.engine,
        {key: allowed for key, (_, allowed) in keys.items()},
        window=dt.timedelta(seconds=limits.window),
        now=_now(web),
    )
    return {keys[key][0] for key in over}


def _now(web: WebContext) -> dt.datetime:
    return dt.datetime.fromtimestamp(web.clock(), dt.UTC)


# Statuses whose address the form never mails: a complaint or a bounce says the address
# does not want, or cannot take, our mail; sending to it on a stranger's request would
# make the form a way to mail it anyway.
_NEVER_MAILED = frozenset({SubscriberStatus.complained, SubscriberStatus.bounced})


def _start_opt_in(web: WebContext, address: str, choices: Choices) -> None:
    store = web.store
    member = store.find(address)
    if member is None:
        if store.is_suppressed(address):
            log.info("sign-up: a forgotten address; nothing sent")
            return
        # Only a new member takes the form's choices: anyone may type any address, so
        # the form must not change what an existing member's profile says.
        chosen = record_for(address, choices, web.newsletter)
        record = chosen._replace(
            name=choices.name or None,
            organisation=choices.organisation or None,
            region=choices.region or None,
            tags=chosen.tags or None,
            status=SubscriberStatus.pending,
        )
        try:
            member = store.add([record], source=SOURCE)[0]
        except StoreError:  # signed up twice at the same moment
            member = store.find(address)
            if member is None:
                raise
        log.info("sign-up: subscriber=%d added as pending", member.id)
    if member.status in _NEVER_MAILED:
        log.info("sign-up: subscriber=%d is %s; nothing sent", member.id, member.status.value)
    elif member.status is SubscriberStatus.active:
        _send(web, member, _already_email(web, member))
    elif not send_confirmation(web, member, "sign-up form"):
        raise MailerError("the confirmation email could not be sent")


def send_confirmation(web: WebContext, member: Subscriber, via: str) -> bool:
    """Email the member a confirmation link, within the hourly cap; False if none went out.

    For a sign-up, and for a member off the list who asks to rejoin from the
    preference centre: nobody goes back on the list without opening a link sent
    to the address now.
    """
    if not _within_hourly_cap(web):
        return False
    try:
        _send(web, member, _confirm_email(web, member), with_name=False)
    except MailerError as error:
        log.error("confirmation for subscriber=%d (%s) not sent: %s", member.id, via, error)
        return False
    return True


_cap_warned: dict[int, dt.datetime] = {}


def _within_hourly_cap(web: WebContext) -> bool:
    """Count one confirmation email against MAILER_SIGNUP_EMAILS_PER_HOUR; False past it."""
    cap = web.settings.signup_emails_per_hour
    key = limit_key("confirmation-emails", "all")
    now = _now(web)
    over = cap == 0 or key in attempt(
        web.store.engine, {key: cap}, window=dt.timedelta(hours=1), now=now
    )
    if over:
        warned = _cap_warned.get(id(web))
        if warned is None or now - warned >= dt.timedelta(hours=1):
            _cap_warned[id(web)] = now
            log.warning(
                "sign-up: %d confirmation emails went out in the last hour, the limit "
                "(MAILER_SIGNUP_EMAILS_PER_HOUR); no more are sent until the hour has passed. "
                "If this is an attack, consider MAILER_CAPTCHA_PROVIDER.",
                cap,
            )
        else:
            log.info("sign-up: hourly limit of confirmation emails reached; none sent")
    return not over


def send_address_change(web: WebContext, member: Subscriber, new_email: str) -> bool:
    """Email the new address a link that confirms the change; False if none went out.

    Counted against MAILER_SIGNUP_EMAILS_PER_HOUR like a sign-up's confirmation:
    the preference centre must not become a way to mail any address at will.
    """
    if not _within_hourly_cap(web):
        return False
    url = web.absolute(f"/change-address/{web.address_changes.token(member, new_email)}")
    context = {"confirm_url": url, "days": CONFIRM_DAYS}
    email = _Email(
        subject=f"Confirm your new address for {web.newsletter.name}",
        text=web.pages.text("email_change_address.txt", **context),
        html=web.pages.text("email_change_address.html", **context),
    )
    try:
        _send(web, member, email, with_name=False, to=new_email)
    except MailerError as error:
        log.error("address confirmation for subscriber=%d not sent: %s", member.id, error)
        return False
    return True


def send_address_changed_note(web: WebContext, member: Subscriber, old_email: str) -> None:
    """Tell the old address that the member's emails now go to another one (masked)."""
    context = {"new_email": masked(member.email)}
    email = _Email(
        subject=f"Your address for {web.newsletter.name} was changed",
        text=web.pages.text("email_address_changed.txt", **context),
        html=web.pages.text("email_address_changed.html", **context),
    )
    try:
        _send(web, member, email, with_name=False, to=old_email)
    except MailerError as error:
        log.error("note of the address change for subscriber=%d not sent: %s", member.id, error)


# -- the emails -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Email:
    subject: str
    text: str
    html: str


# A name that reads as a person's name: up to four words of letters (with ' and -);
# no dots, so no word is a domain.
_NAME_WORD = r"[^\W\d_](?:[^\W\d_]|['’-])*"
_PLAIN_NAME = re.compile(rf"{_NAME_WORD}(?: {_NAME_WORD}){{0,3}}")
GREETING_NAME_LIMIT = 24  # characters of a first name a confirmation greets by


def greeting_name(member: Subscriber) -> str:
    """The first name a confirmation email greets by, or "" when the name is not plainly one.

    The requester typed it, unconfirmed, so only a name that looks like a name counts,
    and only its first word is used: one word of letters cannot carry a link or a
    sentence ("Your account is suspended: verify at …" gets a plain "Hello,").
    """
    name = " ".join(member.name.split())
    first = member.first_name.strip()
    if not _PLAIN_NAME.fullmatch(name) or len(name) > 60:
        return ""
    if len(first) > GREETING_NAME_LIMIT or not _PLAIN_NAME.fullmatch(first) or " " in first:
        return ""
    return first


def _confirm_email(web: WebContext, member: Subscriber) -> _Email:
    url = web.absolute(f"/confirm/{web.confirmations.token(member)}")
    context = {"confirm_url": url, "days": CONFIRM_DAYS, "first_name": greeting_name(member)}
    return _Email(
        subject=f"Confirm your subscription to {web.newsletter.name}",
        text=web.pages.text("email_confirm.txt", **context),
        html=web.pages.text("email_confirm.html", **context),
    )


def _already_email(web: WebContext, member: Subscriber) -> _Email:
    url = web.absolute(web.link(member, Purpose.preferences))
    context = {"name": member.name, "preferences_url": url}
    return _Email(
        subject=f"You are already subscribed to {web.newsletter.name}",
        text=web.pages.text("email_already.txt", **context),
        html=web.pages.text("email_already.html", **context),
    )


def _send(
    web: WebContext,
    member: Subscriber,
    email: _Email,
    *,
    with_name: bool = True,
    to: str | None = None,
) -> None:
    newsletter: Newsletter = web.newsletter
    batch = Batch(
        issue=OUTBOX_FOLDER,
        sender=newsletter.sender,
        content=Content(subject=email.subject, html=email.html, text=email.text),
        list_id=list_id(newsletter.name, newsletter.list_id),
        recipients=[
            Recipient(
                email=to or member.email,
                # Not in a confirmation: the name is what the requester typed, unconfirmed.
                name=member.name if with_name else "",
                unsubscribe_url=web.absolute(web.link(member, Purpose.unsubscribe)),
                # Events about this email map back to the member (a bounce marks them).
                custom_args={"subscriber": str(member.id), "message": "confirmation"},
            )
        ],
    )
    with web.open_transport() as transport:
        delivery = transport.send(batch)[0]
    if not delivery.ok:
        raise MailerError(f"the {transport.name} transport did not take it: {delivery.error}")
    log.info("sign-up: email sent to subscriber=%d (%s)", member.id, email.subject)


# -- the confirmation link ----------------------------------------------------------------------


async def confirm(request: Request) -> Response:
    """GET: a page with a button (changes nothing). POST: activate the sign-up (or re-subscription).

    Mail scanners open every link in an email, so opening the link must not
    confirm: only the page's form does, with its form token. A link that is not
    ours, has expired or is out of date gets the same answer on GET and POST.
    """
    web = context_of(request)
    tokens = web.confirmations
    token = request.path_params["token"]
    try:
        ref, binding = tokens.read(token)
        member = await run_in_threadpool(web.store.get, ref.subscriber_id)
    except SignatureExpired:
        return _confirm_failed(web, "This link has expired", 400)
    except (TokenError, SubscriberNotFound):
        return _confirm_failed(web, "This link does not work", 404)
    if not ref.current(member.link_version):
        return _confirm_failed(web, "This link does not work", 404)
    if member.status is SubscriberStatus.active:
        return _confirmed(web, already=True)
    if not tokens.matches(member, binding):
        return _confirm_failed(web, "This link is out of date", 400)
    if request.method in READ_ONLY:
        return _confirm_page(web, token, member)
    form = await parse_form(request.headers, await read_body(request, FORM_BODY))
    if not web.forms.check(_text(form.get("form_token")), "confirm", token):
        log.info("sign-up not confirmed: subscriber=%d, no valid form token", member.id)
        return _confirm_page(
            web,
            token,
            member,
            status=400,
            notice="This page had been open for a while, so nothing was changed. "
            "Press the button again to confirm.",
        )
    if member.status is SubscriberStatus.pending:
        await run_in_threadpool(web.store.confirm, member.email, source=SOURCE)
    else:
        await run_in_threadpool(
            web.store.resubscribe,
            member.email,
            reason="confirmed a new sign-up from the web form",
            source=SOURCE,
        )
    log.info("sign-up confirmed: subscriber=%d", member.id)
    metrics.signup("confirmed")
    return _confirmed(web, already=False)


def _confirm_page(
    web: WebContext, token: str, member: Subscriber, *, status: int = 200, notice: str = ""
) -> Response:
    return web.pages.page(
        "confirm.html",
        status=status,
        private=True,
        title=f"Confirm your subscription to {web.newsletter.name}",
        email=masked(member.email),
        notice=notice,
        action=f"/confirm/{token}",
        form_token=web.forms.issue("confirm", token),
    )


def _confirmed(web: WebContext, *, already: bool) -> Response:
    title = "You are already subscribed" if already else "You are subscribed"
    return web.pages.message(
        title,
        [
            f"Thank you: {web.newsletter.name} will come to your inbox every fortnight.",
            "Every email has links to choose the topics you get, or to unsubscribe.",
        ],
        private=True,
        links=[("Read past issues", "/archive/")],
    )


def _confirm_failed(web: WebContext, title: str, status: int) -> Response:
    return web.pages.message(
        title,
        [
            "Confirmation links work once, for "
            f"{CONFIRM_DAYS} days, and only if they are complete. Nothing was changed.",
            "You can sign up again to get a new one.",
        ],
        status=status,
        private=True,
        links=[("Sign up again", "/subscribe")],
    )
