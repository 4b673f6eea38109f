"""Members in the studio: find one by name or address, and see the issue as they would.

The studio shows any chosen member's personalisation: their merge-tag values and
the variant their segments give them (less the segments they opted out of, as in
a real send). Their links stay the preview's: a page that can send tests is no
place for a member's working unsubscribe link.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select

from mailer.audience.segments import segments_of
from mailer.config import Newsletter
from mailer.errors import MailerError
from mailer.issues.model import Issue
from mailer.render import variant_key
from mailer.render.preview import sample_member
from mailer.store import SubscriberStore
from mailer.store.preferences import opted_out
from mailer.store.schema import SubscriberRow

__all__ = ["Chosen", "choose", "find_members"]

MATCHES = 12


@dataclass(frozen=True)
class Chosen:
    """Whose personalisation the page shows: a member, or the preview's sample member."""

    id: int | None
    label: str  # 'Aled Pritchard (aled@…)' or 'a sample member (Alex Morgan)'
    values: dict[str, str]
    key: frozenset[str] | None  # the member's variant; None for the sample member


def sample(base_url: str) -> Chosen:
    values = sample_member(base_url)
    return Chosen(None, f"a sample member ({values['name']})", values, None)


def find_members(store: SubscriberStore, words: str) -> list[dict[str, object]]:
    """Up to a dozen active members whose address, name, organisation or region holds these words."""
    pattern = f"%{words.strip().lower()}%"
    query = (
        select(
            SubscriberRow.id,
            SubscriberRow.email,
            SubscriberRow.name,
            SubscriberRow.organisation,
            SubscriberRow.region,
        )
        .where(SubscriberRow.status == "active")
        .where(
            or_(
                SubscriberRow.email_key.like(pattern),
                SubscriberRow.name.ilike(pattern),
                SubscriberRow.organisation.ilike(pattern),
                SubscriberRow.region.ilike(pattern),
            )
        )
        .order_by(SubscriberRow.name, SubscriberRow.id)
        .limit(MATCHES)
    )
    with store.engine.connect() as connection:
        rows = connection.execute(query).all()
    return [
        {
            "id": row.id,
            "email": row.email,
            "name": row.name,
            "organisation": row.organisation,
            "region": row.region,
        }
        for row in rows
    ]


def choose(
    store: SubscriberStore | None,
    member_id: int | None,
    issue: Issue,
    newsletter: Newsletter,
    base_url: str,
) -> Chosen:
    """The member whose personalisation to show (the sample member if none or not found)."""
    if store is None or member_id is None:
        return sample(base_url)
    try:
        member = store.get(member_id)
    except MailerError:  # a stale id in the address bar (forgotten since): the sample member
        return sample(base_url)
    previews = sample_member(base_url)
    values = {
        "name": member.name,
        "first_name": member.first_name,
        "organisation": member.organisation,
        "region": member.region,
        "unsubscribe_url": previews["unsubscribe_url"],
        "preferences_url": previews["preferences_url"],
    }
    key = variant_key(issue, segments_of(member, newsletter)) - opted_out(
        store.engine, [member.id]
    ).get(member.id, frozenset())
    label = f"{member.name} ({member.email})" if member.name else member.email
    return Chosen(member.id, label, values, key)
