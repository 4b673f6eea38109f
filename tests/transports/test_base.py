"""The boundary between the send stage and the transports: placeholders, batches, deliveries."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import ValidationError

from mailer.mail import (
    Batch,
    Content,
    Delivery,
    DeliveryState,
    Recipient,
    fill,
    personalise,
    placeholder,
    placeholders_in,
)
from mailer.render import CompiledVariant, Placeholder, PlaceholderTemplate
from mailer.transports import Transport
from mailer.transports.outbox import OutboxTransport
from mailer.transports.variant import content_of, placeholder_names, values_of

MakeBatch = Callable[..., Batch]
MakeRecipient = Callable[..., Recipient]


class TestPlaceholders:
    def test_marker(self) -> None:
        """A placeholder is written as [[mailer:NAME]]."""
        assert "[[mailer:first_name]]" == placeholder("first_name")

    def test_marker_names_are_identifiers(self) -> None:
        """Placeholder names are lower-case identifiers, so markers need no escaping anywhere."""
        with pytest.raises(ValueError, match="lower case"):
            placeholder("First Name")

    def test_placeholders_in(self) -> None:
        """The placeholders a template uses are found by name."""
        assert {"a", "b_2"} == placeholders_in(
            f"x {placeholder('a')} y {placeholder('b_2')} {placeholder('a')}"
        )

    def test_fill_escapes_for_html(self) -> None:
        """In HTML every value is escaped, quotes included (values can land in attributes)."""
        actual = fill(f'<a title="{placeholder("n")}">', {"n": 'O"Brien & <Co>'}, escape=True)
        assert '<a title="O&quot;Brien &amp; &lt;Co&gt;">' == actual

    def test_fill_raw_for_text(self) -> None:
        """In text and subject, values go in as they are."""
        assert "Hi O'Brien & Co" == fill(
            f"Hi {placeholder('n')}", {"n": "O'Brien & Co"}, escape=False
        )

    def test_fill_is_one_pass(self) -> None:
        """A value that looks like a marker is not expanded again."""
        values = {"a": placeholder("b"), "b": "secret"}
        assert "[[mailer:b]]" == fill(placeholder("a"), values, escape=False)

    def test_personalise(self) -> None:
        """personalise fills subject, HTML and text for one recipient."""
        content = Content(
            subject=f"Hi {placeholder('n')}",
            html=f"<b>{placeholder('n')}</b>",
            text=placeholder("n"),
        )
        actual = personalise(content, {"n": "A&B"})
        assert ("Hi A&B", "<b>A&amp;B</b>", "A&B") == (actual.subject, actual.html, actual.text)


class TestBatch:
    def test_every_placeholder_needs_a_value(
        self, make_batch: MakeBatch, make_recipient: MakeRecipient
    ) -> None:
        """A recipient without a value for a placeholder the content uses is refused up front."""
        lacking = make_recipient(1, values={"first_name": "A"})
        with pytest.raises(ValidationError, match=r"no value for placeholder.*unsubscribe_url"):
            make_batch(recipients=[lacking])

    def test_addresses_are_unique(
        self, make_batch: MakeBatch, make_recipient: MakeRecipient
    ) -> None:
        """The same address twice in a batch (in any case) is refused: SendGrid would refuse it."""
        twice = [make_recipient(1), make_recipient(1, email="MEMBER1@example.com")]
        with pytest.raises(ValidationError, match="twice"):
            make_batch(recipients=twice)

    def test_address_kept_as_given(self, make_recipient: MakeRecipient) -> None:
        """An address is checked but not normalised, so deliveries match the caller's records."""
        assert "Ann.Lee@Example.COM" == make_recipient(1, email="Ann.Lee@Example.COM").email

    def test_invalid_address(self, make_recipient: MakeRecipient) -> None:
        """Something that is not an address is refused."""
        with pytest.raises(ValidationError, match="not an email address"):
            make_recipient(1, email="ann at example.com")

    def test_at_most_1000_recipients(self, make_batch: MakeBatch) -> None:
        """A batch holds at most 1000 recipients, SendGrid's limit per request."""
        with pytest.raises(ValidationError, match="at most 1000"):
            make_batch(1001)

    def test_at_least_one_recipient(self, make_batch: MakeBatch) -> None:
        """An empty batch is a mistake."""
        with pytest.raises(ValidationError):
            make_batch(recipients=[])

    @pytest.mark.parametrize(
        "name", ["To", "subject", "List-Unsubscribe", "Content-Type", "x-sg-id"]
    )
    def test_reserved_headers(self, make_recipient: MakeRecipient, name: str) -> None:
        """Headers the transports set (or SendGrid forbids) cannot be given as extras."""
        with pytest.raises(ValidationError, match="set by the transport"):
            make_recipient(1, headers={name: "x"})

    def test_header_injection(self, make_recipient: MakeRecipient) -> None:
        """A header value with a line break is refused: it would start a new header."""
        with pytest.raises(ValidationError, match="line breaks"):
            make_recipient(1, headers={"X-Campaign": "a\r\nBcc: victim@example.com"})

    @pytest.mark.parametrize(
        "brk", ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]
    )
    def test_every_line_break_the_email_package_knows_is_refused(
        self, make_recipient: MakeRecipient, brk: str
    ) -> None:
        """Not only CR and LF: any character that ends a line would break the header."""
        with pytest.raises(ValidationError, match="line breaks"):
            make_recipient(1, name=f"Ann{brk}Lee")

    def test_values_are_one_line(self, make_recipient: MakeRecipient) -> None:
        """Placeholder values may not break lines, since they can land in the Subject."""
        with pytest.raises(ValidationError, match="line breaks"):
            make_recipient(
                1, values={"first_name": "A\nBcc: x@example.com", "unsubscribe_url": "u"}
            )

    def test_custom_args_limit(self, make_recipient: MakeRecipient) -> None:
        """custom_args over SendGrid's 10,000 bytes are refused."""
        with pytest.raises(ValidationError, match="10000"):
            make_recipient(1, custom_args={"big": "x" * 10_000})

    def test_unsubscribe_url_is_http(self, make_recipient: MakeRecipient) -> None:
        """The one-click unsubscribe link must be an http(s) URL."""
        with pytest.raises(ValidationError):
            make_recipient(1, unsubscribe_url="javascript:alert(1)")

    def test_list_unsubscribe(self, make_recipient: MakeRecipient) -> None:
        """List-Unsubscribe names the URL first, then the mailto when there is one."""
        member = make_recipient(1, unsubscribe_mailto="mailto:leave@example.org?subject=m1")
        expected = (
            "<https://news.example.org/unsubscribe/tok1>, <mailto:leave@example.org?subject=m1>"
        )
        assert expected == member.list_unsubscribe


class TestTrustedRecipient:
    def test_is_what_validation_makes(self) -> None:
        """The send's unvalidated constructor gives an equal, equally frozen Recipient."""
        fields = {
            "email": "ann@example.org",
            "name": "Ann Lee",
            "values": {"first_name": "Ann", "unsubscribe_url": "https://news.example.org/u/t"},
            "unsubscribe_url": "https://news.example.org/u/t",
            "custom_args": {"issue": "2026-01-08-winter", "subscriber": "7"},
        }
        trusted = Recipient.trusted(**fields)
        assert Recipient(**fields) == trusted
        assert Recipient(**fields).model_dump() == trusted.model_dump()
        with pytest.raises(ValidationError):
            trusted.email = "other@example.org"  # type: ignore[misc]


class TestDelivery:
    def test_ok(self) -> None:
        """Only a sent delivery is ok; unknown is not."""
        states = [DeliveryState.sent, DeliveryState.failed, DeliveryState.unknown]
        assert [True, False, False] == [Delivery(email="a@b.c", state=s).ok for s in states]


class TestTransportProtocol:
    def test_outbox_is_a_transport(self, tmp_path: Path) -> None:
        """The transports satisfy the Transport protocol."""
        assert isinstance(OutboxTransport(tmp_path), Transport)


def _variant() -> CompiledVariant:
    """A compiled variant as the renderer makes it, with two placeholders on first_name."""
    first, friendly, unsubscribe = (
        Placeholder("first_name"),
        Placeholder("first_name", "friend"),
        Placeholder("unsubscribe_url"),
    )
    return CompiledVariant(
        key=frozenset(),
        name="general",
        segments=(),
        placeholders=(first, friendly, unsubscribe, Placeholder("preferences_url")),
        subject=PlaceholderTemplate(("Hi ", ""), (1,)),
        preheader=PlaceholderTemplate(("Winter",), ()),
        html=PlaceholderTemplate(("<p>", " / ", '</p><a href="', '">x</a>'), (0, 1, 2)),
        text=PlaceholderTemplate(("Dear ", "\n", "\n"), (1, 2)),
        html_size=0,
        text_size=0,
        warnings=(),
    )


class TestVariantAdapter:
    def test_placeholder_names(self) -> None:
        """Placeholders are named by field, with the position added when there is a fallback."""
        assert [
            "first_name",
            "first_name_1",
            "unsubscribe_url",
            "preferences_url",
        ] == placeholder_names(_variant().placeholders)

    def test_content_of(self) -> None:
        """The renderer's variant becomes a Content with our markers where its placeholders were,
        its text to be wrapped once they are filled in."""
        expected = Content(
            subject=f"Hi {placeholder('first_name_1')}",
            html=f"<p>{placeholder('first_name')} / {placeholder('first_name_1')}</p>"
            f'<a href="{placeholder("unsubscribe_url")}">x</a>',
            text=f"Dear {placeholder('first_name_1')}\n{placeholder('unsubscribe_url')}\n",
            wrap=True,
        )
        assert expected == content_of(_variant())

    def test_same_as_the_renderer(self) -> None:
        """Filling our markers gives exactly what the renderer's own personalise gives."""
        variant = _variant()
        member = {
            "name": "",
            "unsubscribe_url": "https://x/u?a=1&b=2",
            "preferences_url": "https://x/p",
        }
        ours = personalise(content_of(variant), values_of(variant, member))
        theirs = variant.personalise(member)
        assert (theirs.subject, theirs.html, theirs.text) == (ours.subject, ours.html, ours.text)
