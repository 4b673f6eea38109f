"""Client support: which features an email's HTML relies on that Outlook for Windows, Gmail or Yahoo ignore.

The data is caniemail.com's (MIT, bundled in ``caniemail/`` with its licence, so
it works without a network). :func:`features_used` reads a compiled email: CSS in
``<style>`` blocks and ``style`` attributes (properties, at-rules, pseudo-classes,
functions), elements, attributes and image formats. Markup inside conditional
comments (``<!--[if mso]>``) is Outlook's own fallback and is left out.
:func:`support_notes` keeps the features some of the three clients do not fully
support, with what caniemail says about each.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from html.parser import HTMLParser
from importlib import resources
from typing import Any

__all__ = ["CLIENTS", "ClientSupport", "SupportNote", "features_used", "support_notes"]

CLIENTS = {"outlook-windows": "Outlook for Windows", "gmail": "Gmail", "yahoo": "Yahoo Mail"}
_WORDS = {"y": "supported", "a": "partly supported", "n": "not supported", "u": "unknown"}


@dataclass(frozen=True)
class ClientSupport:
    """How one client family handles a feature: 'y', 'a' (partly), 'n' or 'u', and caniemail's notes."""

    client: str
    support: str
    platforms: tuple[str, ...]  # where it is not fully supported
    notes: tuple[str, ...]

    @property
    def words(self) -> str:
        return _WORDS[self.support]


@dataclass(frozen=True)
class SupportNote:
    """A feature the email uses that at least one of the three clients does not fully support."""

    title: str
    description: str
    url: str
    clients: tuple[ClientSupport, ...]  # one per client in CLIENTS, in order

    @property
    def ignored(self) -> bool:
        """Whether at least one of the clients ignores it everywhere."""
        return any(client.support == "n" for client in self.clients)


class _Reader(HTMLParser):
    """Elements, attributes, CSS and image addresses of an email, outside conditional comments."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: set[str] = set()
        self.attributes: set[str] = set()
        self.css: list[str] = []
        self.images: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.add(tag)
        for name, value in attrs:
            self.attributes.add(name)
            if name == "style" and value:
                self.css.append(f"x{{{value}}}")
            if tag == "img" and name == "src" and value:
                self.images.append(value)
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.css.append(data)


_AT_RULE = re.compile(r"@([a-z-]+)([^{;]*)")
_DECLARATION = re.compile(r"(?<![\w-])([a-z-]+)\s*:\s*([^;{}]+)")
_PSEUDO = re.compile(r"(::?[a-z-]+)")
_FUNCTION = re.compile(r"(?<![\w-])([a-z-]+)\(")
_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)


@dataclass(frozen=True)
class Used:
    """What an email's HTML uses, as the features' detection rules need it."""

    elements: frozenset[str]
    attributes: frozenset[str]
    declarations: frozenset[tuple[str, str]]  # (property, value)
    at_rules: tuple[str, ...]  # '@media (prefers-color-scheme: dark)'
    pseudos: frozenset[str]
    functions: frozenset[str]
    image_extensions: frozenset[str]


def read_html(html: str) -> Used:
    reader = _Reader()
    reader.feed(html)
    css = _COMMENT.sub("", "\n".join(reader.css))
    selectors = " ".join(re.findall(r"(?:^|})\s*([^{}@]+)\{", css))
    extensions = {
        match[1].lower()
        for src in reader.images
        if (match := re.search(r"\.([A-Za-z0-9]{2,5})(?:[?#]|$)", src))
    }
    return Used(
        elements=frozenset(reader.elements),
        attributes=frozenset(reader.attributes),
        declarations=frozenset(
            (name, value.strip().lower()) for name, value in _DECLARATION.findall(css)
        ),
        at_rules=tuple(f"@{name}{rest}" for name, rest in _AT_RULE.findall(css)),
        pseudos=frozenset(_PSEUDO.findall(selectors)),
        functions=frozenset(_FUNCTION.findall(css)),
        image_extensions=frozenset(extensions),
    )


def _uses(detect: dict[str, Any], used: Used) -> bool:
    kind = detect["kind"]
    if kind == "property":
        names, value = set(detect["names"]), detect.get("value")
        return any(
            name in names and (value is None or value.split()[0] == value_used.split()[0])
            for name, value_used in used.declarations
        )
    if kind == "at-rule":
        return any(
            rule.startswith(f"@{detect['name']}") and detect["contains"] in rule
            for rule in used.at_rules
        )
    if kind == "pseudo":
        return detect["name"] in used.pseudos
    if kind == "function":
        return detect["name"] in used.functions
    if kind == "element":
        return detect["name"] in used.elements
    if kind == "attribute":
        return detect["name"] in used.attributes
    if kind == "image":
        return not used.image_extensions.isdisjoint(detect["extensions"])
    return False  # pragma: no cover - the generator writes only these kinds


@cache
def _features() -> tuple[dict[str, Any], ...]:
    data = (
        resources.files("mailer.render").joinpath("caniemail", "features.json").read_text("utf-8")
    )
    return tuple(json.loads(data)["features"])


def features_used(html: str) -> list[dict[str, Any]]:
    """caniemail's features that this HTML uses, in caniemail's order."""
    used = read_html(html)
    return [feature for feature in _features() if _uses(feature["detect"], used)]


def support_notes(html: str) -> list[SupportNote]:
    """The features this HTML uses that Outlook for Windows, Gmail or Yahoo Mail do not fully
    support: those one of them ignores first, then those partly supported, each in caniemail's order."""
    notes = []
    for feature in features_used(html):
        clients = tuple(_client(feature, client) for client in CLIENTS)
        if any(client.support in ("n", "a") for client in clients):
            notes.append(
                SupportNote(feature["title"], feature["description"], feature["url"], clients)
            )
    return sorted(notes, key=lambda note: not note.ignored)


def _client(feature: dict[str, Any], client: str) -> ClientSupport:
    platforms: dict[str, dict[str, Any]] = feature["support"].get(client, {})
    values = {platform: result["support"] for platform, result in platforms.items()}
    if not values:
        return ClientSupport(CLIENTS[client], "u", (), ())
    short = [platform for platform, value in values.items() if value != "y"]
    if all(value == "n" for value in values.values()):
        support = "n"
    elif all(value == "y" for value in values.values()):
        support = "y"
    elif all(value == "u" for value in values.values()):
        support = "u"
    else:
        support = "a"
    notes = tuple(dict.fromkeys(note for p in short for note in platforms[p]["notes"]))
    return ClientSupport(CLIENTS[client], support, tuple(short), notes)
