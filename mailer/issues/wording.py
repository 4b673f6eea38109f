"""Messages in editors' words: pydantic's errors about an issue file, said as an editor needs them.

:func:`message` picks the wording for an error from the tables at the end of this
module, by the error's type and the shape of the value given, and fills in the
field's name, where it sits and what it is for.
"""

from __future__ import annotations

import difflib
import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from mailer.issues.model import Button, Image, Issue, Loc, Section, SegmentOverride

__all__ = ["COLON_IN_VALUE", "REQUIRED_FIELDS", "TAB", "YAML_HINTS", "closest", "message", "place"]

# --- Wording -----------------------------------------------------------------------------------

REQUIRED_FIELDS = "subject, preheader, date, status, intro and sections"
COLON_IN_VALUE = (
    "a colon followed by a space inside a value (or a line indented too far): "
    "put the whole value in quotes, or put '|' after the field name and the text on the "
    "lines below it, indented"
)
TAB = "this line has a tab where YAML needs spaces: use spaces to indent, and after colons"

# Errors raised by mailer.issues.model's own validators: their messages are already the editor's.
_CUSTOM = {"link", "date_format", "date_impossible"}

# Pydantic's error types in editor's words. A key "type:shape" (shape of the value given:
# none, bool, str, list, dict) wins over "*:shape", which wins over "type".
# Placeholders: name (the thing at fault), field, parent (where it sits), why (what the
# field is for), value, kind (the value's shape in words), suggestion, example, and
# pydantic's context (expected, max_length, ...).
_MESSAGES: dict[str, str] = {
    "missing": "{name} is missing from {parent}: {why}",
    "header_line": "{name} {msg}",
    "header_encoded_word": "{name} {msg}",
    "extra_forbidden": "{name} is not a field of {parent}{suggestion}",
    "*:none": "{name} is empty: {why}",
    "string_too_short": "{name} is empty: {why}",
    "too_short": "{name} is empty: {why}",
    "string_too_long": "{name} is {length} characters long: keep it to {max_length} at most",
    "too_long:str": "{name} is {length} characters long: keep it to {max_length} at most",
    "too_long": "{name} has {actual_length} entries: keep it to {max_length} at most",
    "string_type": "{name} should be text, not {kind}",
    "string_type:list": (
        "{name} should be text, not a list: to write a bulleted list, put '|' after "
        "'{field}:' and indent the lines below it"
    ),
    "string_type:dict": (
        "{name} should be text, not a group of fields: if the text has a colon followed by "
        "a space, put it in quotes, or put '|' after '{field}:' and indent the text below it"
    ),
    "list_type": "{name} should be a list, one entry per line starting with '- ', not {kind}",
    "dict_type": (
        "{name} should be segment names, each with its fields indented below it, not {kind}"
    ),
    "model_type": "{name} should be fields like {example} indented below it, not {kind}",
    "model_attributes_type": "{name} should be fields like {example} indented below it, not {kind}",
    "literal_error": "{value} is not a choice for {name}: use {expected}",
    "date_type": "{name} should be a date like 2026-12-03, not {kind}",
    "date_parsing": "{value} is not a date: write it like 2026-12-03",
    "date_from_datetime_parsing": "{value} is not a date: write it like 2026-12-03",
    "date_from_datetime_inexact": "{value} is not a date: write it like 2026-12-03",
    "recursion_loop": "{name} refers to itself: write it out in full",
}

_KIND_WORDS: dict[str, str] = {
    "none": "nothing",
    "bool": "true or false (put it in quotes if you mean the word)",
    "str": "a piece of text",
    "list": "a list",
    "dict": "a group of fields",
}

# What each field is for, said when it is missing or empty.
_WHY: dict[str, str] = {
    "subject": "write the subject line members see in their inbox",
    "preheader": "write the short line most inboxes show after the subject",
    "date": "give the date of the fortnightly slot, like 2026-12-03",
    "status": "write draft while you are working on the issue, or ready when it can be sent",
    "intro": "write the opening words that come before the sections",
    "sections": "an issue needs at least one section, each with a title and a body",
    "segments": "name segments with their overrides below, or remove the line",
    "sign_off": "write the closing words, or remove the line",
    "title": "every section needs a title",
    "body": "write the section's text",
    "image": "give the image's url and alt, or remove the line",
    "layout": "write stacked, image-left or image-right, or remove the line",
    "button": "give the button's label and url, or remove the line",
    "audience": "list segment names, or remove the line so that everyone sees the section",
    "url": "give the link, starting with https://",
    "alt": "every image needs alt text describing it for people who cannot see it",
    "link": "give the link, starting with https://, or remove the line",
    "label": "write the words on the button, like 'Book a place'",
}

_MODEL_NAMES: dict[type[BaseModel], str] = {
    Issue: "the issue itself (not indented)",
    Section: "a section",
    Image: "an image",
    Button: "a button",
    SegmentOverride: "a segment override",
}

# PyYAML's complaints (a phrase from its context or problem) in editor's words, and which
# of its two marks points at the line to fix. The first match wins.
YAML_HINTS: tuple[tuple[str, str, str], ...] = (
    ("mapping values are not allowed here", "problem", COLON_IN_VALUE),
    ("found character '\\t'", "problem", TAB),
    (
        "while scanning an alias",
        "context",
        "a value that starts with '*' must be in quotes (or in a block after '|'): "
        "YAML reads a leading * as a reference, so Markdown like **bold** needs quotes here",
    ),
    (
        "found undefined alias",
        "problem",
        "a value that starts with '*' must be in quotes (or in a block after '|'): "
        "YAML reads a leading * as a reference, so Markdown like *this* needs quotes here",
    ),
    (
        "while scanning an anchor",
        "context",
        "a value that starts with '&' must be in quotes",
    ),
    (
        "that cannot start any token",
        "problem",
        "a value that starts with @, ` or % must be in quotes",
    ),
    (
        "could not find expected ':'",
        "context",
        "this line should be 'name: value' but has no colon; if it belongs to the text "
        "above, put '|' after that field name and indent the text like the line before",
    ),
    (
        "while scanning a quoted scalar",
        "context",
        "a quote opens here but never closes: add the closing quote",
    ),
    (
        "found unknown escape character",
        "problem",
        "a backslash inside double quotes: use single quotes around this value instead",
    ),
    (
        "while scanning a block scalar",
        "context",
        "nothing may follow '|' on its line: start the text on the next line, indented",
    ),
    (
        "but found another document",
        "problem",
        "a second '---' line: an issue file holds one issue, so remove it",
    ),
    (
        "found duplicate anchor",
        "problem",
        "a value that starts with '&' must be in quotes",
    ),
    (
        "while parsing a flow sequence",
        "context",
        "a '[' that never closes with ']': if the value is text that starts with '[', "
        "put it in quotes",
    ),
    (
        "while parsing a flow mapping",
        "context",
        "a '{' that never closes with '}': text that starts with '{{' must be in quotes",
    ),
    (
        "expected <block end>, but found '<scalar>'",
        "problem",
        "there is more text after a closing quote or bracket: put the whole value in "
        "quotes (text that starts with a quote, '[' or '{{' needs them)",
    ),
    (
        "expected <block end>, but found ','",
        "problem",
        "there is more text after a closing quote or bracket: put the whole value in "
        "quotes (text that starts with a quote, '[' or '{{' needs them)",
    ),
    (
        "expected <block end>",
        "problem",
        "this line is not indented like the lines around it: fields of the same thing "
        "must start in the same column, and list entries start with '- '",
    ),
)


def message(details: ErrorDetails, loc: Loc, ctx: dict[str, Any]) -> str:
    value = details["input"]
    kind = details["type"]
    shape = _shape(value) if kind not in ("missing", "extra_forbidden") else "-"
    template = (
        _MESSAGES.get(f"{kind}:{shape}")
        or _MESSAGES.get(f"*:{shape}")
        or _MESSAGES.get(kind)
        or ("{msg}" if kind in _CUSTOM else "{name}: {msg}")
    )
    field = next((part for part in reversed(loc) if isinstance(part, str)), "")
    words = {
        "msg": details["msg"],
        "name": _name(loc),
        "field": field,
        "parent": place(loc[:-1]),
        "why": _WHY.get(field, "fill it in, or remove the line"),
        "value": _shown(value),
        "kind": _KIND_WORDS.get(shape, "something else"),
        "length": len(value.strip()) if isinstance(value, str) else 0,
        "example": _example(_model_at(loc)),
        "suggestion": _suggest(field, loc[:-1]) if kind == "extra_forbidden" else "",
    }
    return template.format_map({**ctx, **words})


def _shape(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "bool"
    for shape, cls in (("str", str), ("list", list), ("dict", dict)):
        if isinstance(value, cls):
            return shape
    return "other"


def _shown(value: object) -> str:
    """The value as written, quoted and cut short; a list or mapping by its kind."""
    # Never str() a list or mapping: through YAML aliases a few lines can hold millions of items.
    if isinstance(value, bool):
        return f"'{str(value).lower()}'"
    if isinstance(value, str):
        text = value.strip()
        return f"'{text}'" if len(text) <= 40 else f"'{text[:39]}…'"
    return _KIND_WORDS.get(_shape(value), "something else")


def _name(loc: Loc) -> str:
    """What is at loc, in words: 'subject', 'section 3', 'entry 2 of audience'."""
    match loc:
        case ("sections", int()) | ("segments", str()):
            return place(loc)
        case (*_, str(field), int(index)):
            return f"entry {index + 1} of '{field}'"
        case (*_, str(field)):
            return f"'{field}'"
    return "the issue"


def place(loc: Loc) -> str:
    """Where a field sits, in words: 'the issue', 'section 3', 'the image of section 3'."""
    match loc:
        case ():
            return "the issue"
        case ("sections", int(index)):
            return f"section {index + 1}"
        case ("sections", int(index), str(part)):
            return f"the {part} of section {index + 1}"
        case ("segments", str(segment)):
            return f"the '{segment}' segment override"
    return "'" + ".".join(str(part) for part in loc) + "'"


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The model whose fields live at loc, found by following Issue's annotations."""
    annotation: Any = Issue
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            info = annotation.model_fields.get(part) if isinstance(part, str) else None
            if info is None:
                return None
            annotation = info.annotation
        elif get_origin(annotation) in (list, dict):
            annotation = get_args(annotation)[-1]
        else:
            return None
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _unwrap(annotation: Any) -> Any:
    """X from Annotated[X, ...] and from X | None."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            rest = [arg for arg in get_args(annotation) if arg is not type(None)]
            if len(rest) != 1:
                return annotation
            annotation = rest[0]
        else:
            return annotation


def _fields(model: type[BaseModel]) -> list[str]:
    return [name for name in model.model_fields if name != "slug"]


def _example(model: type[BaseModel] | None) -> str:
    if model is None:
        return "'name: value'"
    required = [name for name, info in model.model_fields.items() if info.is_required()]
    return " and ".join(f"'{name}:'" for name in required if name != "slug")


def closest(key: str, loc: Loc) -> str | None:
    """The field at loc whose name is nearest to key, if one is near enough to be a typo."""
    model = _model_at(loc)
    close = difflib.get_close_matches(key.lower(), _fields(model), n=1) if model else []
    return close[0] if close else None


def _suggest(key: str, loc: Loc) -> str:
    """A nearby field name, or where the field belongs, or the list of fields at loc."""
    model = _model_at(loc)
    if model is None:
        return ""
    close = closest(key, loc)
    if close:
        return f"; did you mean '{close}'?"
    fields = _fields(model)
    owners = [name for other, name in _MODEL_NAMES.items() if key in _fields(other)]
    if owners:
        return f"; '{key}' belongs in {' or '.join(owners)}: check the indentation"
    return f"; the fields of {place(loc)} are: {', '.join(fields)}"
