"""With MAILER_BOUNCE_ADDRESS, each member's copy names them and the issue where bounces and
unsubscribes go: the envelope sender and a mailto: in List-Unsubscribe."""

from __future__ import annotations

import re
from collections.abc import Callable

from helpers.members import add_members
from helpers.outbox import outbox_files
from helpers.sending import Sending

from mailer.config import Settings
from mailer.sending.personalise import link_signer
from mailer.sending.proofs import send_test
from mailer.transports import open_transport
from mailer.verp import VerpPurpose, verp_signer

BOUNCES = "bounces@news.example.org"


class TestTheSendNamesEachMember:
    def test_return_path_and_mailto_name_the_member_and_the_issue(
        self, sending: Sending, make_settings: Callable[..., Settings]
    ) -> None:
        """Each copy's Return-Path and List-Unsubscribe mailto: verify for its member and issue."""
        sending.settings = make_settings(bounce_address=BOUNCES)
        members = add_members(sending.store, 3)
        with open_transport(sending.settings) as transport:
            sending.run(transport)
        verp = verp_signer(sending.settings)
        assert verp is not None
        found = []
        for member in members:
            message = outbox_files(sending.settings.outbox_dir / sending.issue.slug)[member.email]
            mailto = re.search(
                r"<mailto:([^?>]+)\?subject=unsubscribe>", message["List-Unsubscribe"]
            )
            assert mailto is not None
            for address in (message["Return-Path"].strip("<>"), mailto[1]):
                token = verp.read(address)
                assert token is not None and verp.verify(token, member.email)
                found.append((token.purpose, token.member_id))
        expected = [
            (p, m.id) for m in members for p in (VerpPurpose.bounce, VerpPurpose.unsubscribe)
        ]
        assert expected == found

    def test_without_a_bounce_address_nothing_changes(self, sending: Sending) -> None:
        """No MAILER_BOUNCE_ADDRESS: no Return-Path, and the https link alone."""
        [member] = add_members(sending.store, 1)
        with open_transport(sending.settings) as transport:
            sending.run(transport)
        message = outbox_files(sending.settings.outbox_dir / sending.issue.slug)[member.email]
        assert (None, "mailto:" in message["List-Unsubscribe"]) == (message["Return-Path"], False)

    def test_a_test_send_to_a_member_is_marked_as_one(
        self, sending: Sending, make_settings: Callable[..., Settings]
    ) -> None:
        """A proof to a member: their own addresses, with the test purposes; to anyone else, the
        bare bounce address."""
        settings = make_settings(bounce_address=BOUNCES)
        [member] = add_members(sending.store, 1)
        with open_transport(settings) as transport:
            send_test(
                sending.issue,
                sending.newsletter,
                settings,
                sending.store,
                transport,
                link_signer(settings),
                [member.email, "editor@example.org"],
            )
        sent = outbox_files(settings.outbox_dir / f"{sending.issue.slug}--test")
        verp = verp_signer(settings)
        assert verp is not None
        token = verp.read(sent[member.email]["Return-Path"].strip("<>"))
        assert token is not None and VerpPurpose.test_bounce == token.purpose
        assert f"<{BOUNCES}>" == sent["editor@example.org"]["Return-Path"]
