"""Test sends (``mailer send --test EMAIL``): proofs of an issue, outside the send ledger.

An editor sends themselves (or a colleague) the issue as members will get it, in
any status, before it goes out. An address on the list gets that member's variant
and links; any other address gets the general variant, personalised for the
preview's sample member. The subject starts with "[TEST] ", the outbox writes to
``<outbox>/<issue>--test/``, and ``custom_args`` say ``test: "true"`` so that
neither reconciliation nor the webhook takes a proof for the real send.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mailer.audience.segments import segments_of
from mailer.config import Newsletter, Settings
from mailer.headersafety import header_safe
from mailer.issues.model import Issue
from mailer.mail import Batch, Content, Delivery, Recipient
from mailer.render import variant_key
from mailer.render.preview import sample_member
from mailer.sending.personalise import Variants, archive_url, links, member_values
from mailer.store import SubscriberStore
from mailer.store.preferences import opted_out
from mailer.tokens import TokenSigner
from mailer.transports import Transport
from mailer.transports.message import list_id
from mailer.verp import VerpPurpose, VerpSigner, verp_signer

__all__ = ["TEST_PREFIX", "send_test", "send_variant_test", "variant_test_batch"]

TEST_PREFIX = "[TEST] "


def send_test(
    issue: Issue,
    newsletter: Newsletter,
    settings: Settings,
    store: SubscriberStore,
    transport: Transport,
    signer: TokenSigner,
    emails: Sequence[str],
) -> list[tuple[str, Delivery]]:
    """Send the issue to these addresses only, marked as a test, outside the ledger.

    An address on the list gets that member's variant and links; any other gets
    the general variant, personalised for the preview's sample member. Returns
    (variant name, delivery) per address.
    """
    targets = [
        _test_target(issue, newsletter, settings, store, signer, email)
        for email in dict.fromkeys(e.strip() for e in emails if e.strip())
    ]
    variants = Variants(issue, newsletter, archive_url(settings, issue))
    variants.prepare(target.key for target in targets)
    verp = verp_signer(settings)
    results: list[tuple[str, Delivery]] = []
    for key in dict.fromkeys(target.key for target in targets):
        variant = variants.get(key)
        recipients = [
            Recipient(
                email=target.email,
                name=target.name,
                values=variant.values(target.fields),
                unsubscribe_url=target.fields["unsubscribe_url"],
                custom_args=target.custom_args,
                **_returns(verp, target, issue.slug),
            )
            for target in targets
            if target.key == key
        ]
        batch = _test_batch(issue, newsletter, variant.content, recipients)
        results += [(variant.name, delivery) for delivery in transport.send(batch)]
    return results


def variant_test_batch(
    issue: Issue,
    newsletter: Newsletter,
    settings: Settings,
    key: frozenset[str],
    emails: Sequence[str],
    member: Mapping[str, str] | None = None,
) -> Batch:
    """One variant as a test to these addresses, personalised as ``member`` (default: the
    preview's sample member), with the preview's links, which unsubscribe nobody."""
    variant = Variants(issue, newsletter, archive_url(settings, issue)).get(key)
    values = {**sample_member(settings.base_url), **(member or {})}
    for link, url in sample_member(settings.base_url).items():
        if link.endswith("_url"):
            values[link] = url  # never a real member's links in someone else's inbox
    recipients = [
        Recipient(
            email=email,
            values=variant.values(values),
            unsubscribe_url=values["unsubscribe_url"],
            custom_args={"issue": issue.slug, "test": "true"},
        )
        for email in dict.fromkeys(emails)
    ]
    return _test_batch(issue, newsletter, variant.content, recipients)


def send_variant_test(
    issue: Issue,
    newsletter: Newsletter,
    settings: Settings,
    transport: Transport,
    key: frozenset[str],
    emails: Sequence[str],
    member: Mapping[str, str] | None = None,
) -> list[Delivery]:
    """Send one variant (what the studio shows) to these addresses, marked as a test, outside
    the ledger, like ``mailer send --test``."""
    return transport.send(variant_test_batch(issue, newsletter, settings, key, emails, member))


def _test_batch(
    issue: Issue, newsletter: Newsletter, content: Content, recipients: list[Recipient]
) -> Batch:
    return Batch(
        issue=f"{issue.slug}--test",  # its own outbox folder: never mixed with the real send
        sender=newsletter.sender,
        content=Content(
            subject=TEST_PREFIX + content.subject,
            html=content.html,
            text=content.text,
            wrap=content.wrap,
        ),
        list_id=list_id(newsletter.name, newsletter.list_id),
        recipients=recipients,
    )


@dataclass(frozen=True)
class _TestTarget:
    email: str
    name: str
    key: frozenset[str]
    fields: dict[str, str]
    custom_args: dict[str, str]
    member: tuple[int, str] | None = None  # the member's id and stored address, if on the list


def _returns(verp: VerpSigner | None, target: _TestTarget, issue: str) -> dict[str, str | None]:
    """A member's test-send envelope sender and mailto (their bounces and unsubscribes are
    theirs, marked as of a test); for anyone else, the bare bounce address and no mailto."""
    if verp is None:
        return {}
    if target.member is None:
        return {"return_path": verp.bounce_address}
    member_id, email = target.member
    return {
        "return_path": verp.address(VerpPurpose.test_bounce, member_id, issue, email),
        "unsubscribe_mailto": verp.unsubscribe_mailto(member_id, issue, email, test=True),
    }


def _test_target(
    issue: Issue,
    newsletter: Newsletter,
    settings: Settings,
    store: SubscriberStore,
    signer: TokenSigner,
    email: str,
) -> _TestTarget:
    # "test" in custom_args: reconciliation and the webhook never take a test for the real send.
    custom_args = {"issue": issue.slug, "test": "true"}
    member = store.find(email)
    if member is None:
        return _TestTarget(email, "", frozenset(), sample_member(settings.base_url), custom_args)
    custom_args["subscriber"] = str(member.id)
    return _TestTarget(
        email,
        header_safe(member.name),
        # As in the real send: segments the member opted out of do not count.
        variant_key(issue, segments_of(member, newsletter))
        - opted_out(store.engine, [member.id]).get(member.id, frozenset()),
        member_values(member, links(member.id, signer, settings.base_url, member.link_version)),
        custom_args,
        (member.id, member.email),
    )
