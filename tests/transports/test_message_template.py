"""MessageTemplate writes the message the email package would build, only much faster.

The oracle (helpers/oracle.py) builds an EmailMessage per recipient, as the transports
did before. Parsed back, both messages must give a mail client the same: every
header decoded, the same parts with the same type, charset, transfer encoding
and decoded text, whatever the names, addresses and values. Only the Message-ID
and the boundary differ, and choices that change nothing once decoded: where a
header folds, how long quoted-printable lines are.
"""

from __future__ import annotations

import binascii
import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from helpers.oracle import oracle_bytes, parse, reading
from helpers.project import ROOT
from hypothesis import assume, example, given
from hypothesis import strategies as st

from mailer.config import Sender, load_newsletter
from mailer.headersafety import ENCODED_WORD, header_safe
from mailer.issues.check import load_issue
from mailer.mail import Batch, Content, Recipient, placeholder
from mailer.render import CompiledVariant, render_issue
from mailer.transports.message import MessageTemplate, QuotedPrintable, list_id
from mailer.transports.variant import content_of, values_of

NOW = dt.datetime(2026, 1, 8, 9, 30, tzinfo=dt.UTC)
SENDER = Sender(name="Connected Communities", email="news@example.org", reply_to="ed@example.org")
LIST_ID = list_id("Connected Communities", "news.example.org")
URL = "https://news.example.org/unsubscribe/tok"

# Placeholders where values are awkward for quoted-printable: at the start of a line (".",
# "From "), at its end (trailing spaces and tabs), inside lines longer than 76 (soft
# breaks around the value), at the very end without a newline; and in the subject.
A, B = placeholder("a"), placeholder("b")
AWKWARD = Content(
    subject=f"Re: {A} and {B}",
    text=f"{A}\nDear {B}\n{'x' * 70}{A}{'y' * 90}\n\n{B} {A}\t\nThe end: {B}",
    html=f'<p>{A}</p>\r\n<p title="{B}">{"z" * 200}{A}</p>\n{A}',
)
BODY_PLACEHOLDERS = Content(subject="News", text=AWKWARD.text, html=AWKWARD.html)
"""AWKWARD with placeholders in its bodies only (a header takes no value with a line break in it)."""

# What people put in names and fields, and what trips encoders up.
TRICKY = [
    "",
    ".",
    "From me",
    "a=b",
    "=",
    "=?utf-8?q?Zo=C3=AB?=",
    "trailing  ",
    "tab\t",
    " \t ",
    "Zoë Ørsted",
    "Ann & <Bo> \"quoted\" 'single'",
    'Ann "Bo" Lee',
    "Lee, Ann",
    "back\\slash",
    "J. R. R. Tolkien",
    "x" * 300,
    "word " * 40,
    "[[mailer:a]]",
    "\x00\x01\x1f\x7f\x9f",  # control characters that do not break a line
    "日本語のニュースレター" * 5,
    "emoji 🎄 and ü",
]
# Any text Recipient takes: no character that ends a line (str.splitlines's).
LINE_BREAKS = "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
ONE_LINE = st.text(st.characters(codec="utf-8", exclude_characters=LINE_BREAKS), max_size=120)
ASCII = st.from_regex(r"\A[\t -~]{0,100}\Z")  # around a header line's length, often plain
VALUES = st.one_of(st.sampled_from(TRICKY), ASCII, ONE_LINE)
LOCAL = st.from_regex(r"\A[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,20}(\.[A-Za-z0-9_-]{1,10}){0,2}\Z")
EMAILS = st.one_of(
    st.builds("{}@{}".format, LOCAL, st.sampled_from(["example.com", "news.example.org"])),
    st.sampled_from(["zoë@example.com", "用户@example.com", "ann@bücher.example"]),
)
HEADER_NAMES = st.sampled_from(["X-Member", "Comments", "List-Archive"])


def batch(recipient: Recipient, content: Content = AWKWARD, **fields: Any) -> Batch:
    return Batch(
        issue="2026-01-08-winter",
        sender=fields.pop("sender", SENDER),
        content=content,
        list_id=fields.pop("list_id", LIST_ID),
        recipients=[recipient],
        **fields,
    )


def member(
    email: str = "ann@example.com", name: str = "Ann Lee", a: str = "A", b: str = "B", **fields: Any
) -> Recipient:
    fields = {"unsubscribe_url": URL, **fields}
    return Recipient(email=email, name=name, values={"a": a, "b": b}, **fields)


def fast(batch: Batch, recipient: Recipient) -> bytes:
    return MessageTemplate(batch).message(recipient, now=NOW).data


def outcome(build: Callable[[], bytes]) -> object:
    """What a client reads of the message, or the error that stopped it being built.

    The email package refuses a header value that str.splitlines() would split:
    CR and LF (which Recipient refuses too), but also e.g. form feed or U+2028.
    """
    try:
        return reading(build())
    except ValueError as error:
        return f"refused: {error}"


def assert_same(batch: Batch, recipient: Recipient) -> None:
    assert outcome(lambda: oracle_bytes(batch, recipient, now=NOW)) == outcome(
        lambda: fast(batch, recipient)
    )


def addressed_to(data: bytes) -> list[str]:
    return [address.addr_spec for address in parse(data)["To"].addresses]


def bodies(data: bytes) -> list[bytes]:
    """Each part's body as it is on the wire (still quoted-printable)."""
    boundary = parse(data).get_boundary()
    assert boundary is not None
    pieces = data.split(b"\r\n--" + boundary.encode() + b"\r\n")[1:]
    pieces[-1] = pieces[-1].split(b"\r\n--" + boundary.encode() + b"--\r\n")[0]
    return [piece.partition(b"\r\n\r\n")[2] for piece in pieces]


@pytest.fixture(scope="module")
def winter() -> CompiledVariant:
    """The general variant of the sample winter issue: ~45 KB of real HTML."""
    newsletter = load_newsletter(ROOT / "mailer.toml")
    issue = load_issue(ROOT / "issues" / "2026-12-03-winter-connections.yaml", newsletter)
    [variant] = render_issue(
        issue, newsletter, [frozenset()], archive_url="https://news.example.org/archive/w"
    )
    return variant


class TestSameAsTheEmailPackage:
    @pytest.mark.parametrize(
        ("name", "email"),
        [
            ("Member0 Example", "member000000@example.org"),
            ("", "ann.lee+news@example.org"),
            ("Zoë Ørsted", "zoe@example.org"),
            ("O'Brien, Siobhán", "siobhan@example.org"),
        ],
    )
    def test_ordinary_members_of_the_sample_issue(
        self, winter: CompiledVariant, name: str, email: str
    ) -> None:
        """The real issue for everyday members, one template per batch as the transports use."""
        fields = {
            "name": name,
            "first_name": name.partition(" ")[0],
            "organisation": "Group 7 & Friends",
            "region": "Wales",
            "unsubscribe_url": URL + "1",
            "preferences_url": "https://news.example.org/preferences/tok1",
        }
        recipient = Recipient(
            email=email, name=name, values=values_of(winter, fields), unsubscribe_url=URL + "1"
        )
        assert_same(batch(recipient, content_of(winter)), recipient)

    @given(name=VALUES, email=EMAILS)
    @example(name="N" * 56, email="ann@example.com")  # "To: N...N <ann@example.com>": 78
    @example(name="N" * 57, email="ann@example.com")  # 79: folded by the email package
    @example(name="x" * 120, email="ann@example.com")  # longer than a header line
    @example(name='"Ann" \\ Lee, =?x?= ', email="ann@example.com")
    @example(name="Zoë", email="zoë@example.com")  # SMTPUTF8
    @example(name="<victim@example.org>" * 4, email="ann@example.com")  # see below
    def test_any_name_and_address(self, name: str, email: str) -> None:
        """To, with names needing quotes or RFC 2047, long ones folded, UTF-8 addresses.

        Where the email package is wrong (it folds a long quoted name by dropping the
        quotes, so a name of <addresses> becomes the To addresses), MessageTemplate
        must be right: the member's address, and the name as given.
        """
        recipient = member(email=email, name=name)
        if addressed_to(oracle_bytes(batch(recipient), recipient, now=NOW)) != [email]:
            to = parse(fast(batch(recipient), recipient))["To"]
            assert [email] == addressed_to(fast(batch(recipient), recipient))
            assert header_safe(name) == to.addresses[0].display_name
            return
        assert_same(batch(recipient), recipient)

    @given(a=VALUES, b=VALUES)
    @example(a=".", b="From me")
    @example(a="trailing \t ", b=" ")
    @example(a="", b="")
    @example(a="x" * 300, b="=" * 50)
    def test_any_values(self, a: str, b: str) -> None:
        """Subject and both bodies, with values at the awkward places of AWKWARD."""
        recipient = member(a=a, b=b)
        assert_same(batch(recipient), recipient)

    @given(name=HEADER_NAMES, value=VALUES)
    def test_any_extra_header(self, name: str, value: str) -> None:
        """A recipient's own headers, as the email package folds and encodes them."""
        recipient = member(headers={name: value})
        assert_same(batch(recipient, headers={"X-Issue": value}), recipient)

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("Sender", "Ann Lee <ann@example.org>"),
            ("Sender", 'Lee, "Ann" <ann@example.org>'),
            ("Resent-To", "a@example.org, Zoë <b@example.org>"),
            ("Resent-Date", "Thu, 8 Jan 2026 09:30:00 GMT"),
        ],
    )
    def test_extra_headers_the_email_package_parses(self, name: str, value: str) -> None:
        """Address and date headers are written as the email package rewrites them."""
        recipient = member(headers={name: value})
        assert_same(batch(recipient), recipient)

    @given(name=VALUES, subject=VALUES.filter(lambda s: s.strip()))
    @example(name="News", subject="No placeholders and longer than a header line, " * 3)
    def test_any_sender_and_subject_without_placeholders(self, name: str, subject: str) -> None:
        """The headers every message of a batch shares are the email package's own."""
        content = Content(subject=subject, text=AWKWARD.text, html=AWKWARD.html)
        recipient = member()
        assume(not ENCODED_WORD.search(name))  # mailer.toml refuses it (test_config.py)
        sender = Sender(name=name, email="news@example.org")
        assert_same(
            batch(recipient, content, sender=sender, list_id=list_id(name, "n.org")), recipient
        )

    @pytest.mark.parametrize(
        "url",
        [
            URL + "T" * 150,
            URL + "?a=1&b=%C3%A9",
            "https://news.example.org/désabonner/tok",
        ],
    )
    def test_list_unsubscribe(self, url: str) -> None:
        """Long and non-ASCII unsubscribe URLs, with a mailto after them."""
        recipient = member(unsubscribe_url=url, unsubscribe_mailto="mailto:leave@example.org")
        assert_same(batch(recipient), recipient)

    def test_a_long_sender_domain(self) -> None:
        """A Message-ID longer than a header line stays whole, as the email package leaves it."""
        sender = Sender(name="N", email="news@" + "very-long-subdomain." * 4 + "example.org")
        recipient = member()
        data = fast(batch(recipient, sender=sender), recipient)
        assert parse(data)["Message-ID"].endswith("very-long-subdomain.example.org>")
        assert_same(batch(recipient, sender=sender), recipient)


class TestLineBreaksInValues:
    """A validated Recipient has no CR or LF in its values; Recipient.trusted does not check."""

    def trusted(self, a: str) -> Recipient:
        return Recipient.trusted(
            email="ann@example.com",
            name="Ann",
            values={"a": a, "b": "B"},
            unsubscribe_url=URL,
            custom_args={},
        )

    @pytest.mark.parametrize("a", ["one\ntwo", "one\rtwo", "one\r\ntwo", "end\n", "\r"])
    def test_in_the_bodies_they_break_lines(self, a: str) -> None:
        """In a body, a line break in a value ends the line, as the email package does it."""
        recipient = self.trusted(a)
        assert_same(batch(recipient, BODY_PLACEHOLDERS), recipient)

    def test_in_a_header_they_are_spaces(self) -> None:
        """Never a header line of its own: in the subject, a line break is a space."""
        recipient = self.trusted("x\r\nBcc: victim@example.org")
        message = parse(fast(batch(recipient), recipient))
        assert "Re: x Bcc: victim@example.org and B" == str(message["Subject"])
        assert None is message["Bcc"]
        assert_same(batch(recipient), recipient)


class TestOnTheWire:
    @given(a=VALUES, b=VALUES)
    @example(a="é" * 100, b="=" * 100)
    @example(a="x" * 73 + "\t", b="")  # b2a_qp escapes a tab before CRLF after its length check
    def test_bodies_are_seven_bit_with_short_lines(self, a: str, b: str) -> None:
        """Quoted-printable: ASCII, CRLF, lines of at most 78 as the email package writes them.

        RFC 2045 asks for 76; b2a_qp goes to 77 when it escapes a space or tab at the
        end of a line, the email package to 78 (policy.max_line_length).
        """
        recipient = member(a=a, b=b)
        for body in bodies(fast(batch(recipient, BODY_PLACEHOLDERS), recipient)):
            lines = body.split(b"\r\n")
            assert (True, [], []) == (
                body.isascii(),
                [line for line in lines if len(line) > 78],
                [line for line in lines if b"\r" in line or b"\n" in line],
            )

    @given(a=VALUES, b=VALUES)
    def test_the_boundary_is_only_between_parts(self, a: str, b: str) -> None:
        """The boundary has "=_", which quoted-printable never writes: no body can hold it."""
        recipient = member(a=a, b=b)
        data = fast(batch(recipient, BODY_PLACEHOLDERS), recipient)
        boundary = parse(data).get_boundary()
        assert boundary is not None
        assert (True, 4, [False, False]) == (
            "=_" in boundary,
            data.count(boundary.encode()),  # the header, two parts, the end
            [b"=_" in body for body in bodies(data)],
        )


def encoded_whole(text: str) -> bytes:
    """Quoted-printable of the whole text at once, as every message's parts once were."""
    lines = text.encode("utf-8").splitlines()
    return binascii.b2a_qp(b"\r\n".join(lines) + b"\r\n", istext=True)


# Text with every kind of line end (CR, LF and CRLF come of CR and LF side by side), and
# what b2a_qp treats specially at a line's edges.
QP_TEXT = st.text(
    st.one_of(st.sampled_from(" \t.=\r\n\x0b\x85\u2028é€🎄"), st.characters()), max_size=300
)


class TestQuotedPrintable:
    @given(texts=st.lists(QP_TEXT, min_size=1, max_size=4))
    @example(texts=["", "\n", ".", " \r\n.\n\n=", "x" * 200 + " \n" + "y" * 75 + "\t"])
    def test_line_by_line_is_the_whole_text_at_once(self, texts: list[str]) -> None:
        """Each text comes out byte for byte as b2a_qp writes it whole: the first time, and
        again from the lines kept."""
        encode = QuotedPrintable()
        assert [encoded_whole(text) for text in texts * 2] == [encode(t) for t in texts * 2]

    def test_past_its_room_lines_are_encoded_each_time_and_still_right(self) -> None:
        """A batch keeps at most ``most`` bytes of lines and encodings, whatever it sends."""
        encode = QuotedPrintable(most=300)
        texts = [f"line {n} " + "é" * 30 + "\nthe same line" for n in range(40)]
        assert [encoded_whole(text) for text in texts] == [encode(text) for text in texts]
        kept = encode._encoded
        assert 0 < sum(len(line) + len(part) for line, part in kept.items()) <= 300
        assert b"the same line" in kept

    def test_a_batchs_messages_share_the_encoding_of_the_variants_lines(
        self, winter: CompiledVariant
    ) -> None:
        """The sample issue's HTML is the same for each member but for the values: after
        the first message, only the lines holding them are encoded again."""
        html = content_of(winter).html
        encode = QuotedPrintable()
        encode(html)
        kept = len(encode._encoded)
        again = encode(html.replace("[[", "[[x"))
        assert (encoded_whole(html.replace("[[", "[[x")), True) == (
            again,
            kept < len(encode._encoded) <= kept + html.count("[["),
        )
