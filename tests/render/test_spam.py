"""SpamAssassin's local score of every variant of the render sample is at most 0.

Run as the studio runs it (``spamassassin -L -t``: local rules, no network), on the
whole message as the SMTP transport writes it. The hidden preheader used to score
HTML_FONT_LOW_CONTRAST (+0.7): white 1 px text on the light page colour.
``scripts/services`` installs Debian's spamassassin.
"""

from __future__ import annotations

import pytest

from mailer.config import Newsletter, Settings, TransportName
from mailer.issues.model import Issue
from mailer.sending.proofs import variant_test_batch
from mailer.studio.spam import score
from mailer.transports.message import MessageTemplate

VARIANTS = {
    "general": frozenset[str](),
    "youth": frozenset({"youth"}),
    "in-person+wales": frozenset({"in-person", "wales"}),
    "youth+intergenerational": frozenset({"youth", "intergenerational"}),
}


@pytest.mark.parametrize("name", VARIANTS)
def test_every_variant_scores_at_most_zero(
    name: str, sample: Issue, newsletter: Newsletter
) -> None:
    """No rule adds points: in particular not HTML_FONT_LOW_CONTRAST for the preheader."""
    settings = Settings(transport=TransportName.outbox, base_url="https://news.example.org")
    batch = variant_test_batch(sample, newsletter, settings, VARIANTS[name], ["ann@example.net"])
    message = MessageTemplate(batch).message(batch.recipients[0])
    verdict = score(message.data)
    assert verdict.problem is None, verdict.problem
    assert verdict.points is not None and verdict.points <= 0, verdict.rules
    assert "HTML_FONT_LOW_CONTRAST" not in {rule.name for rule in verdict.rules}
