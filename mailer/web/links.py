"""Members' own links: unsubscribe (with RFC 8058 one-click) and the preference centre.

Each link carries a signed token naming the member (:mod:`mailer.tokens`); a
token that does not verify gets a 404 page and changes nothing. ``GET`` never
changes anything: mail scanners (Safe Links and the like) open every link in an
email, so the change happens only on ``POST``, from the page's form (with its
form token) or from a mailbox provider's one-click request (whose body is
``List-Unsubscribe=One-Click`` and which carries no form token, no cookie, and
must get a 200 without a redirect).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from mailer.audience.choices import (
    Choices,
    check_choices,
    chosen_interests,
    record_for,
    sections_in_words,
)
from mailer.audience.segments import segments_of
from mailer.errors import InvalidChoice, StoreError, SubscriberNotFound, TokenError
from mailer.store import Subscriber, SubscriberStatus
from mailer.store.emails import InvalidEmail, normalise_email
from mailer.store.preferences import opted_out, save_member_choices
from mailer.tokens import Purpose
from mailer.web.context import WebContext, context_of
from mailer.web.pages import masked
from mailer.web.security import FORM_BODY, READ_ONLY, parse_form, read_body
from mailer.web.signup import (
    send_address_change,
    send_address_changed_note,
    send_confirmation,
)

__all__ = ["change_address", "preferences", "unsubscribe"]

log = logging.getLogger(__name__)

ONE_CLICK = ("List-Unsubscribe", "One-Click")
SOURCE = "web"
WHY = {
    SubscriberStatus.unsubscribed: "you unsubscribed",
    SubscriberStatus.bounced: "emails to this address bounced",
    SubscriberStatus.complained: "an email to this address was marked as spam",
    SubscriberStatus.pending: "the sign-up was not confirmed",
}


def _mailable(member: Subscriber) -> bool:
    return member.status in (SubscriberStatus.active, SubscriberStatus.pending)


def _can_rejoin(member: Subscriber) -> bool:
    """Whether a member off the list may ask, from a link, to be sent a confirmation.

    Not after a spam complaint: that address is never mailed again on the strength
    of a link in an old email (see :mod:`mailer.web.signup`).
    """
    return member.status in (SubscriberStatus.unsubscribed, SubscriberStatus.bounced)


def _invalid_link(web: WebContext, purpose: Purpose) -> Response:
    back, label = web.back
    return web.pages.message(
        "This link does not work",
        [
            f"The {purpose.value} link you followed is not complete or not one of ours. "
            "It may have been cut short when it was copied: open it again from the email.",
            "If that does not help, reply to any of our emails and we will sort it out.",
        ],
        status=404,
        private=True,
        links=[(f"Back to {label}", back)],
    )


async def _member(web: WebContext, token: str, purpose: Purpose) -> Subscriber | None:
    """The member a link names (None if no longer on the list).

    TokenError if the link is not ours, or was made before the member's links were
    revoked.
    """
    ref = web.signer.read(token, purpose)
    try:
        member = await run_in_threadpool(web.store.get, ref.subscriber_id)
    except SubscriberNotFound:
        return None
    if not ref.current(member.link_version):
        log.info("a revoked %s link was used: subscriber=%d", purpose.value, member.id)
        raise TokenError(f"this {purpose.value} link was revoked")
    return member


# -- unsubscribe ----------------------------------------------------------------------------


async def unsubscribe(request: Request) -> Response:
    """GET: the confirmation page. POST: unsubscribe (page form, or RFC 8058 one-click)."""
    web = context_of(request)
    token = request.path_params["token"]
    try:
        member = await _member(web, token, Purpose.unsubscribe)
    except TokenError:
        return _invalid_link(web, Purpose.unsubscribe)
    if request.method in READ_ONLY:
        return _unsubscribe_page(web, token, member, "confirm")
    form = await parse_form(request.headers, await read_body(request, FORM_BODY))
    one_click = form.get(ONE_CLICK[0]) == ONE_CLICK[1]
    if not one_click and not web.forms.check(_field(form, "form_token"), "unsubscribe", token):
        return _unsubscribe_page(
            web,
            token,
            member,
            "confirm",
            status=400,
            notice="This page had been open for a while. Press Unsubscribe again to confirm.",
        )
    if member is not None and _mailable(member):
        member = await run_in_threadpool(
            web.store.unsubscribe,
            member.id,
            reason="one-click unsubscribe" if one_click else "unsubscribed from the email link",
            source=SOURCE,
        )
        log.info(
            "unsubscribed: subscriber=%d via=%s", member.id, "one-click" if one_click else "page"
        )
    return _unsubscribe_page(web, token, member, "done")


def _unsubscribe_page(
    web: WebContext,
    token: str,
    member: Subscriber | None,
    wanted: str,
    *,
    status: int = 200,
    notice: str = "",
) -> Response:
    back, label = web.back
    if member is None:
        state = "missing"
    elif wanted == "confirm" and not _mailable(member):
        state = "inactive"
    else:
        state = wanted
    return web.pages.page(
        "unsubscribe.html",
        status=status,
        private=True,
        title="Unsubscribe",
        state=state,
        notice=notice,
        email=masked(member.email) if member else "",
        why=WHY.get(member.status, "") if member else "",
        can_rejoin=member is not None and _can_rejoin(member),
        action=f"/unsubscribe/{token}",
        form_token=web.forms.issue("unsubscribe", token),
        back_url=back,
        back_label=label,
    )


# -- preferences ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SegmentChoice:
    name: str
    label: str
    description: str
    wanted: bool


async def preferences(request: Request) -> Response:
    """GET: the preference centre. POST: save segment choices, unsubscribe or re-subscribe."""
    web = context_of(request)
    token = request.path_params["token"]
    try:
        member = await _member(web, token, Purpose.preferences)
    except TokenError:
        return _invalid_link(web, Purpose.preferences)
    if member is None:
        return _unsubscribe_page(web, token, None, "missing")
    if request.method in READ_ONLY:
        return await _preferences_page(web, token, member)
    form = await parse_form(request.headers, await read_body(request, FORM_BODY))
    if not web.forms.check(_field(form, "form_token"), "preferences", token):
        return await _preferences_page(
            web,
            token,
            member,
            status=400,
            error="This page had been open for a while, so nothing was changed. Please try again.",
        )
    action = _field(form, "action") or "save"
    if action == "save" and member.status is SubscriberStatus.active:
        try:
            # A field the form did not send is kept as it is; unticked boxes send nothing,
            # so the interests count only when the form showed them.
            shown = _field(form, "interests_shown") is not None
            choices = check_choices(
                web.newsletter,
                name=_field(form, "name"),
                organisation=_field(form, "organisation"),
                region=_field(form, "region"),
                interests=[v for v in form.getlist("interest") if isinstance(v, str)]
                if shown
                else None,
            )
        except InvalidChoice as problem:
            return await _preferences_page(
                web, token, member, status=400, error=f"Nothing was changed: {problem}."
            )
        wanted = {value for value in form.getlist("segment") if isinstance(value, str)}
        await run_in_threadpool(_save_choices, web, member, choices, wanted)
        member = await run_in_threadpool(web.store.get, member.id)
        notice = "Your choices are saved."
    elif action == "change_address" and member.status is SubscriberStatus.active:
        given = (_field(form, "new_email") or "")[:320]
        try:
            if "\x00" in given:
                raise InvalidEmail(given, "it holds a NUL character")
            new_email = normalise_email(given).email
        except InvalidEmail:
            return await _preferences_page(
                web,
                token,
                member,
                status=400,
                error="Please enter the new address like name@example.org.",
            )
        if new_email.lower() == member.email.lower():
            notice = f"Your emails already come to {masked(member.email)}."
        elif await run_in_threadpool(send_address_change, web, member, new_email):
            log.info("address change asked: subscriber=%d", member.id)
            notice = (
                f"We have emailed a link to {masked(new_email)}: open it and press the button "
                "on the page it opens to make the change."
            )
        else:
            notice = "We could not send the email just now. Please try again later."
    elif action == "unsubscribe" and _mailable(member):
        member = await run_in_threadpool(
            web.store.unsubscribe,
            member.id,
            reason="unsubscribed in the preference centre",
            source=SOURCE,
        )
        log.info("unsubscribed: subscriber=%d via=preferences", member.id)
        notice = f"You are unsubscribed: we will not send {web.newsletter.name} to you any more."
    elif action == "resubscribe" and _can_rejoin(member):
        # Double opt-in: the link in an old email (or one a mailbox provider saw, in
        # List-Unsubscribe) must not be enough to start mailing an address again.
        sent = await run_in_threadpool(send_confirmation, web, member, "preference centre")
        notice = (
            f"We have emailed a link to {masked(member.email)}: open it and press the button "
            "on the page it opens to subscribe again."
            if sent
            else "We could not send the email just now. Please try again later."
        )
    else:
        return await _preferences_page(web, token, member, status=400, error="Nothing was changed.")
    return await _preferences_page(web, token, member, notice=notice)


def _save_choices(web: WebContext, member: Subscriber, choices: Choices, wanted: set[str]) -> None:
    """Save the profile and interests, and opt out of the other topics shown and not ticked.

    Interests are chosen by tag, so an opt-out of a choosable segment is dropped;
    opt-outs of segments the page did not show stay as they were.
    """
    newsletter = web.newsletter
    choosable = {segment.name for segment in newsletter.choosable_segments}
    record = record_for(member.email, choices, newsletter, member.tags)
    changed = replace(
        member,
        tags=member.tags if record.tags is None else record.tags,
        region=member.region if record.region is None else record.region,
    )
    # A segment left behind by the change (the old region's) is not opted out of.
    shown = segments_of(member, newsletter) & segments_of(changed, newsletter) - choosable
    before = opted_out(web.store.engine, [member.id]).get(member.id, frozenset())
    after = (before - shown - choosable) | (shown - wanted)
    save_member_choices(web.store.engine, record, source=SOURCE, opted_out=after)


async def _preferences_page(
    web: WebContext,
    token: str,
    member: Subscriber,
    *,
    status: int = 200,
    notice: str = "",
    error: str = "",
) -> Response:
    newsletter = web.newsletter
    theirs = segments_of(member, newsletter)
    out = (await run_in_threadpool(opted_out, web.store.engine, [member.id])).get(
        member.id, frozenset()
    )
    choosable = {segment.name for segment in newsletter.choosable_segments}
    others = [
        SegmentChoice(s.name, s.label, s.description, s.name not in out)
        for s in newsletter.segments
        if s.name in theirs and s.name not in choosable
    ]
    choices = {
        "name": member.name,
        "organisation": member.organisation,
        "region": newsletter.region_named(member.region) or "",
        "interests": chosen_interests(member, newsletter) - out,
    }
    back, label = web.back
    return web.pages.page(
        "preferences.html",
        status=status,
        private=True,
        title="Your email preferences",
        email=masked(member.email),
        mailable=member.status is SubscriberStatus.active,
        pending=member.status is SubscriberStatus.pending,
        why=WHY.get(member.status, ""),
        can_rejoin=_can_rejoin(member),
        segments=others,
        choices=choices,
        regions=newsletter.regions,
        interests_offered=newsletter.choosable_segments,
        sections=sections_in_words(theirs, out, newsletter),
        notice=notice,
        error=error,
        action=f"/preferences/{token}",
        form_token=web.forms.issue("preferences", token),
        back_url=back,
        back_label=label,
    )


# -- a new address ------------------------------------------------------------------------------


async def change_address(request: Request) -> Response:
    """GET: a page with a button (changes nothing). POST: move the member to the new address.

    Reached from the link emailed to the new address, so whoever presses the
    button can read mail there. The old address is told afterwards.
    """
    web = context_of(request)
    token = request.path_params["token"]
    try:
        ref, binding, new_email = web.address_changes.read(token)
        member = await run_in_threadpool(web.store.get, ref.subscriber_id)
    except (TokenError, SubscriberNotFound):
        return _change_failed(web, "This link does not work", 404)
    if not ref.current(member.link_version) or member.status is not SubscriberStatus.active:
        return _change_failed(web, "This link does not work", 404)
    if member.email.lower() == new_email.lower():
        return _address_changed(web, new_email)
    if not web.address_changes.matches(member, binding):
        return _change_failed(web, "This link is out of date", 400)
    if request.method in READ_ONLY:
        return _change_page(web, token, member, new_email)
    form = await parse_form(request.headers, await read_body(request, FORM_BODY))
    if not web.forms.check(_field(form, "form_token"), "change-address", token):
        return _change_page(
            web,
            token,
            member,
            new_email,
            status=400,
            notice="This page had been open for a while, so nothing was changed. "
            "Press the button again.",
        )
    old_email = member.email
    try:
        member = await run_in_threadpool(
            web.store.change_email, member.id, new_email, source=SOURCE
        )
    except StoreError:
        return web.pages.message(
            "This address cannot be used",
            [
                f"{new_email} is already on our list, or was removed from it at its owner's "
                "request. Nothing was changed.",
                "If you want your emails to go there, reply to any of our emails.",
            ],
            status=409,
            private=True,
        )
    log.info("address changed: subscriber=%d", member.id)
    await run_in_threadpool(send_address_changed_note, web, member, old_email)
    return _address_changed(web, new_email)


def _change_page(
    web: WebContext,
    token: str,
    member: Subscriber,
    new_email: str,
    *,
    status: int = 200,
    notice: str = "",
) -> Response:
    return web.pages.page(
        "change_address.html",
        status=status,
        private=True,
        title="Use your new address?",
        new_email=new_email,
        old_email=masked(member.email),
        notice=notice,
        action=f"/change-address/{token}",
        form_token=web.forms.issue("change-address", token),
    )


def _address_changed(web: WebContext, new_email: str) -> Response:
    return web.pages.message(
        "Your address is changed",
        [f"{web.newsletter.name} now comes to {new_email}. We have told the old address."],
        private=True,
        links=[("Read past issues", "/archive/")],
    )


def _change_failed(web: WebContext, title: str, status: int) -> Response:
    return web.pages.message(
        title,
        [
            "Address confirmation links work for a few days, once, and only if they are "
            "complete. Nothing was changed.",
            "You can ask again from the preferences link in any of our emails.",
        ],
        status=status,
        private=True,
    )


def _field(form: FormData, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None
