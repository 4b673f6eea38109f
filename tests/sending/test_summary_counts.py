"""Every member of the audience is counted in exactly one column of the send's summary (issue 14).

Before: the audience is read page by page as the send goes, and members who left the
list before their page was read appeared in no column (2,374 of 20,000 in the report).
"""

from __future__ import annotations

from helpers.members import add_members
from helpers.sending import AfterEachBatch, Sending

from mailer.audience.plan import PAGE_SIZE
from mailer.transports.outbox import OutboxTransport


def test_members_who_leave_before_their_page_is_read_are_counted_as_suppressed(
    sending: Sending,
) -> None:
    members = add_members(sending.store, PAGE_SIZE + 150)
    # After the first batch: some of the first page (claimed later: re-checked, suppressed)
    # and some of the second page (never read: they were lost) unsubscribe.
    leaving = [m for m in members if m.id % 7 == 0 and m.id > members[400].id]

    def unsubscribe(batch: int) -> None:
        if batch == 1:
            for member in leaving:
                sending.store.unsubscribe(member.id, reason="test", source="test")

    with OutboxTransport(sending.settings.outbox_dir) as outbox:
        summary = sending.run(AfterEachBatch(outbox, unsubscribe), batch_size=100)

    assert summary.stopped is None
    assert len(members) - len(leaving) == summary.total("sent")
    assert len(leaving) == summary.total("suppressed")
    assert len(members) == sum(variant.members for variant in summary.variants.values())
    for name, variant in summary.variants.items():
        assert variant.members == sum(1 for n in range(len(members)) if _variant(n) == name)


def _variant(n: int) -> str:
    return ("youth", "wales", "general")[n % 3]
