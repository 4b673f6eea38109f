"""The email as inboxes show it: dark mode and pictures off, as transformations of its HTML."""

from __future__ import annotations

from mailer.studio.spam import INSTALL, SpamRule, parse_report, score
from mailer.studio.views import dark_mode, images_off


class TestDarkMode:
    def test_the_dark_rules_apply_always(self) -> None:
        """prefers-color-scheme: dark becomes 'all', as a dark device's client applies it."""
        html = "<style>@media (prefers-color-scheme: dark) { body { background: #111; } }</style>"

        assert "<style>@media all { body { background: #111; } }</style>" == dark_mode(html)


class TestPicturesOff:
    def test_each_picture_becomes_its_alt_text(self) -> None:
        """A picture is replaced by a box of its width holding its alt text, escaped."""
        html = (
            '<p><img src="https://e.org/a.jpg" alt="Tea &amp; cake" width="536" height="auto"></p>'
        )

        shown = images_off(html)

        assert shown.startswith('<p><span class="mailer-alt-text" role="img" style="')
        assert "max-width:536px" in shown
        assert shown.endswith(">Tea &amp; cake</span></p>")
        assert "<img" not in shown

    def test_a_decorative_picture_disappears(self) -> None:
        """An empty alt shows nothing, as clients do."""
        assert "<p></p>" == images_off('<p><img src="https://e.org/line.png" alt=""></p>')


REPORT = """\
Content analysis details:   (2.3 points, 5.0 required)

 pts rule name              description
---- ---------------------- --------------------------------------------------
-0.0 NO_RELAYS              Informational: message was not relayed via SMTP
 0.7 HTML_FONT_LOW_CONTRAST BODY: HTML font color similar or identical to
                            background
 1.6 SUBJ_ALL_CAPS          Subject is all capitals

"""


class TestSpamAssassin:
    def test_the_report_is_read(self) -> None:
        """Points, threshold and rules, a description carried over two lines included."""
        found = parse_report(REPORT)

        assert (2.3, 5.0) == (found.points, found.required)
        assert [
            SpamRule(-0.0, "NO_RELAYS", "Informational: message was not relayed via SMTP"),
            SpamRule(
                0.7,
                "HTML_FONT_LOW_CONTRAST",
                "BODY: HTML font color similar or identical to background",
            ),
            SpamRule(1.6, "SUBJ_ALL_CAPS", "Subject is all capitals"),
        ] == list(found.rules)

    def test_without_the_program_the_way_to_install_it(self) -> None:
        """No spamassassin on PATH: no score, and how to install it."""
        assert INSTALL == score(b"Subject: hi\r\n\r\nhi\r\n", "no-such-spamassassin").problem
