"""Client support notes from caniemail.com's bundled data: what Outlook, Gmail and Yahoo ignore."""

from __future__ import annotations

import json
from importlib import resources

from mailer.render.support import support_notes


def notes(html: str) -> dict[str, tuple[str, str, str]]:
    """Each noted feature and its support in Outlook for Windows, Gmail and Yahoo Mail."""
    return {
        note.title: tuple(client.support for client in note.clients)  # type: ignore[misc]
        for note in support_notes(html)
    }


class TestTheData:
    def test_it_is_bundled_with_its_licence(self) -> None:
        """caniemail's MIT licence sits beside the data, which names its source commit."""
        folder = resources.files("mailer.render").joinpath("caniemail")
        data = json.loads(folder.joinpath("features.json").read_text("utf-8"))

        assert folder.joinpath("LICENSE").read_text("utf-8").startswith("MIT License")
        assert "Copyright (c) 2019 Rémi Parmentier" in folder.joinpath("LICENSE").read_text("utf-8")
        assert ("https://github.com/hteumeuleu/caniemail", 40) == (
            data["source"],
            len(data["commit"]),
        )


class TestWhatIsFound:
    def test_dark_mode_media_queries(self) -> None:
        """@media (prefers-color-scheme: dark) is ignored by all three."""
        html = "<style>@media (prefers-color-scheme: dark) { p { color: #fff; } }</style><p>Hi</p>"

        assert ("n", "n", "n") == notes(html)["@media (prefers-color-scheme)"]

    def test_properties_in_style_attributes(self) -> None:
        """A property in a style attribute counts: border-radius is lost on Outlook for Windows."""
        found = notes('<div style="border-radius: 6px">Hi</div>')

        assert "n" == found["border-radius"][0]

    def test_flex_is_a_property_and_a_value(self) -> None:
        """display:flex is its own feature, apart from display."""
        assert "display:flex" in notes('<div style="display: flex">Hi</div>')
        assert "display:flex" not in notes('<div style="display: block">Hi</div>')

    def test_outlooks_own_markup_is_left_out(self) -> None:
        """What sits in a conditional comment is Outlook's fallback, not a feature the email relies on."""
        html = '<!--[if mso]><v:roundrect style="border-radius: 6px"></v:roundrect><![endif]--><p>Hi</p>'

        assert "border-radius" not in notes(html)

    def test_image_formats(self) -> None:
        """A WebP picture is noted: Outlook for Windows shows it only in some versions."""
        found = notes('<img src="https://example.org/a.webp" alt="A hall">')

        assert "a" == found["webP image format"][0]

    def test_only_what_some_client_does_not_fully_support(self) -> None:
        """Features all three support fully (a plain <p>) are not listed."""
        assert {} == notes("<p>Hello</p>")


class TestOrder:
    def test_what_a_client_ignores_comes_first(self) -> None:
        """Features one client ignores everywhere come before those only partly supported."""
        found = support_notes('<p style="margin: 0; border-radius: 6px">Hi</p>')

        assert [("border-radius", True), ("margin", False)] == [
            (note.title, note.ignored) for note in found
        ]
