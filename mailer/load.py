"""Load and check issue files: YAML in, an :class:`~mailer.issue.Issue` or every problem out.

An issue file is read in stages, each of which collects problems instead of
stopping at the first, so that an editor sees everything to fix at once:

    bytes --decode--> text --compose--> YAML nodes (with line marks)
          --build--> plain data --pydantic--> Issue --cross-check with mailer.toml

The YAML nodes are kept so that each pydantic error, whose ``loc`` is a path such
as ``("sections", 2, "image", "alt")``, can be pinned to the line of that key in
the file. Messages are written for editors, not programmers; the wording lives
in the tables near the end of this module.
"""

from __future__ import annotations

import bisect
import datetime as dt
import difflib
import re
import types
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from mailer.config import Newsletter
from mailer.errors import IssueFileError, Problem
from mailer.issue import Button, Image, Issue, MergeTagMistake, Section, SegmentOverride

__all__ = ["IssueReport", "IssueYamlLoader", "check_issue", "check_text", "load_issue"]

Loc = tuple[str | int, ...]

_STR = "tag:yaml.org,2002:str"
_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_PLAIN_TAGS = {_STR, _NULL, _BOOL, "tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"}
_TRUE = {"true", "True", "TRUE"}
# A comment straight after a one-line value, with no space after '#': #1, #hashtag.
# ("# note" with a space reads as a comment meant as one, and is left alone.)
_LOST_TEXT = re.compile(r"[ \t]+(#[^\s#][^\n\r]*)")


class IssueYamlLoader(yaml.SafeLoader):
    """YAML as editors mean it: text stays text.

    PyYAML follows YAML 1.1, which turns ``no`` into False (the "Norway problem"),
    ``10:30`` into 630 and ``2026-12-03`` into a date before pydantic can say
    anything useful about it. Here only ``true``/``false`` and ``null``/``~``/empty
    are special; every other plain value is a string, and pydantic does the rest.
    """


IssueYamlLoader.yaml_implicit_resolvers = {}  # none of SafeLoader's, only these two:
IssueYamlLoader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
IssueYamlLoader.add_implicit_resolver(
    _NULL, re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)


@dataclass(frozen=True)
class IssueReport:
    """The outcome of checking one issue file: the Issue when there is no error."""

    path: str
    issue: Issue | None
    errors: tuple[Problem, ...] = ()
    warnings: tuple[Problem, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors


def load_issue(path: Path | str, newsletter: Newsletter) -> Issue:
    """The issue in the file; raises IssueFileError carrying every problem if there is any."""
    report = check_issue(path, newsletter)
    if report.issue is None:
        raise IssueFileError(report.errors)
    return report.issue


def check_issue(path: Path | str, newsletter: Newsletter) -> IssueReport:
    """Read and check an issue file; problems name the path as given."""
    where = str(path)
    try:
        content = Path(path).read_bytes()
    except OSError as error:
        return IssueReport(where, None, (Problem(where, 1, _unreadable(error)),))
    return check_text(content, path, newsletter)


def check_text(content: str | bytes, path: Path | str, newsletter: Newsletter) -> IssueReport:
    """Check an issue's text as if read from ``path`` (which names it and gives its slug)."""
    source = _Source(str(path))
    if isinstance(content, bytes):
        text = source.decode(content)
        if text is None:
            return source.report(None)
    else:
        text = content
    source.set_text(text)
    root = source.compose()
    if root is None:
        return source.report(None)
    try:
        data = _Builder(source).build_root(root)
        issue = _validate(source, data, Path(path).stem)
    except RecursionError:
        source.error(1, "the file is nested too deeply to read: check its indentation")
        return source.report(None)
    _check_segments(source, data, newsletter)
    if issue is not None and not source.errors:
        _warn(source, issue, Path(path).stem)
    return source.report(issue)


def _unreadable(error: OSError) -> str:
    if isinstance(error, FileNotFoundError):
        return "no such file: check the name and the folder (issue files end in .yaml)"
    if isinstance(error, IsADirectoryError):
        return "this is a folder, not an issue file"
    if isinstance(error, PermissionError):
        return "the file cannot be read: permission denied"
    return f"the file cannot be read: {error.strerror or error}"


# --- The file being checked -------------------------------------------------------------

# The characters YAML counts as line breaks; marks count lines the same way.
_LINE_BREAK = re.compile(r"\r\n|[\n\r\x85\u2028\u2029]")
_NOT_UTF8 = re.compile(r"[\udc80-\udcff]")  # bytes that surrogateescape could not decode


@dataclass
class _Source:
    """One file's text, its YAML nodes, and the problems found so far."""

    where: str
    text: str = ""
    root: Node | None = None
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    _line_ends: list[int] = field(default_factory=list)  # index after each line break
    _last_line: int = 1

    def set_text(self, text: str) -> None:
        self._use(text.removeprefix("\ufeff"))
        ends_with_break = bool(self._line_ends) and self._line_ends[-1] == len(self.text)
        self._last_line = max(1, len(self._line_ends) + (0 if ends_with_break else 1))
        self.text = self._printable()  # same length, same line breaks

    def _use(self, text: str) -> None:
        self.text = text
        self._line_ends = [match.end() for match in _LINE_BREAK.finditer(text)]

    def error(self, line: int, message: str) -> None:
        self.errors.append(Problem(self.where, min(max(line, 1), self._last_line), message))

    def warn(self, line: int, message: str) -> None:
        self.warnings.append(Problem(self.where, min(max(line, 1), self._last_line), message))

    def report(self, issue: Issue | None) -> IssueReport:
        errors = tuple(sorted(dict.fromkeys(self.errors)))
        return IssueReport(
            self.where,
            None if errors else issue,
            errors,
            tuple(sorted(dict.fromkeys(self.warnings))),
        )

    def line_at(self, index: int) -> int:
        return bisect.bisect_right(self._line_ends, index) + 1

    def decode(self, content: bytes) -> str | None:
        """The text of the file; non-UTF-8 bytes are reported and replaced so checking goes on."""
        if content.startswith((b"\xff\xfe", b"\xfe\xff")):
            self.error(1, "the file is saved as UTF-16: save it as UTF-8 (plain text) instead")
            return None
        if b"\x00" in content:
            self.error(
                1,
                "this is not a text file (is it a Word document or an image?): "
                "an issue file is plain text, saved as UTF-8",
            )
            return None
        text = content.decode("utf-8", errors="surrogateescape")
        self._use(text)
        seen: set[int] = set()
        for match in _NOT_UTF8.finditer(text):
            line = self.line_at(match.start())
            if line not in seen:
                seen.add(line)
                self.errors.append(Problem(self.where, line, _not_utf8(match.group())))
        return _NOT_UTF8.sub("\ufffd", text)

    def _printable(self) -> str:
        """Report characters YAML refuses (control characters); replace them so parsing goes on."""
        seen: set[int] = set()
        for match in yaml.reader.Reader.NON_PRINTABLE.finditer(self.text):
            line = self.line_at(match.start())
            if line not in seen:
                seen.add(line)
                self.errors.append(
                    Problem(
                        self.where,
                        line,
                        f"this line has an invisible control character "
                        f"(U+{ord(match.group()):04X}), often pasted from a PDF or a word "
                        "processor: delete it and retype the text around it",
                    )
                )
        return yaml.reader.Reader.NON_PRINTABLE.sub("\ufffd", self.text)

    def compose(self) -> MappingNode | None:
        """The file's YAML node tree; None (with a problem) when there is no mapping to check."""
        if not self.text.strip():
            self.error(1, f"the file is empty: an issue needs {_REQUIRED_FIELDS}")
            return None
        loader = IssueYamlLoader(self.text)
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as error:
            self._yaml_error(error)
            return None
        except yaml.YAMLError as error:
            self.error(1, f"the file cannot be read as YAML: {error}")
            return None
        except RecursionError:
            self.error(1, "the file is nested too deeply to read: check its indentation")
            return None
        finally:
            loader.dispose()
        if node is None or (isinstance(node, ScalarNode) and node.tag == _NULL):
            self.error(1, f"the file has no fields: an issue needs {_REQUIRED_FIELDS}")
            return None
        if not isinstance(node, MappingNode):
            shape = "a list" if isinstance(node, SequenceNode) else "a single piece of text"
            self.error(
                node.start_mark.line + 1,
                f"the file should be a list of fields, one per line, like 'subject: …', "
                f"but it is {shape}",
            )
            return None
        self.root = node
        return node

    def _yaml_error(self, error: yaml.MarkedYAMLError) -> None:
        said = f"{error.context or ''} {error.problem or ''}"
        default = ("", "problem", f"the file cannot be read here: {error.problem}")
        _, which, message = next((hint for hint in _YAML_HINTS if hint[0] in said), default)
        mark = error.context_mark if which == "context" else error.problem_mark
        mark = mark or error.problem_mark or error.context_mark
        self.error(mark.line + 1 if mark else 1, message)

    # Lines of things in the file, by their place in the data (pydantic's loc).

    def walk(self, loc: Sequence[str | int]) -> list[tuple[ScalarNode | None, Node]]:
        """The (key, value) nodes along loc, as far as the file has them."""
        steps: list[tuple[ScalarNode | None, Node]] = []
        node = self.root
        for part in loc:
            if isinstance(node, MappingNode) and isinstance(part, str):
                # The last of duplicated keys wins, as in the data.
                pairs = [
                    (k, v) for k, v in node.value if isinstance(k, ScalarNode) and k.value == part
                ]
                if not pairs:
                    break
                steps.append(pairs[-1])
            elif (
                isinstance(node, SequenceNode) and isinstance(part, int) and part < len(node.value)
            ):
                steps.append((None, node.value[part]))
            else:
                break
            node = steps[-1][1]
        return steps

    def line_of(self, loc: Sequence[str | int]) -> int:
        """The line of the key at loc (or of the list entry), or of the nearest thing above it."""
        steps = self.walk(loc)
        if not steps:
            return self.root.start_mark.line + 1 if self.root else 1
        key, node = steps[-1]
        return (key or node).start_mark.line + 1

    def line_of_text(self, loc: Sequence[str | int], fragments: Sequence[str]) -> Iterator[int]:
        """The line of each fragment within the text at loc, in order (the key's if not found)."""
        steps = self.walk(loc)
        fallback = self.line_of(loc)
        if len(steps) != len(loc):
            yield from (fallback for _ in fragments)
            return
        node = steps[-1][1]
        start, end = node.start_mark.index, node.end_mark.index
        for fragment in fragments:
            found = self.text.find(fragment, start, end)
            if found < 0:
                yield fallback
            else:
                start = found + len(fragment)
                yield self.line_at(found)


def _not_utf8(raw: str) -> str:
    byte = ord(raw) - 0xDC00
    try:
        guess = bytes([byte]).decode("cp1252")
    except UnicodeDecodeError:
        guess = ""
    maybe = f" (perhaps '{guess}' saved in the Windows-1252 encoding)" if guess.strip() else ""
    return (
        f"this line has a character that is not UTF-8: the byte 0x{byte:02X}{maybe}; "
        "save the file as UTF-8 and retype that character"
    )


# --- From YAML nodes to data ----------------------------------------------------------------


class _Builder:
    """Plain data from YAML nodes, noting duplicate keys and YAML features issues do not use."""

    def __init__(self, source: _Source) -> None:
        self.source = source
        self.memo: dict[int, object] = {}  # anchors and aliases share one node: build it once

    def build_root(self, root: MappingNode) -> dict[str, object]:
        data = self.build(root, ())
        assert isinstance(data, dict)
        if "slug" in data:
            del data["slug"]
            self.source.error(
                self.source.line_of(("slug",)),
                "'slug' is not written in the file: the issue's name is its file name",
            )
        return data

    def build(self, node: Node, loc: Loc) -> object:
        if id(node) in self.memo:
            return self.memo[id(node)]
        if node.tag not in _PLAIN_TAGS:
            self._odd_tag(node)
        if isinstance(node, ScalarNode):
            self._lost_text(node)
            return self._scalar(node)
        if isinstance(node, SequenceNode):
            items: list[object] = []
            self.memo[id(node)] = items  # before the children, so a self-reference ends
            items.extend(self.build(child, (*loc, i)) for i, child in enumerate(node.value))
            return items
        assert isinstance(node, MappingNode)
        if loc and node.flow_style and self.source.text.startswith("{{", node.start_mark.index):
            return self._unquoted_tag(node, loc)
        mapping: dict[str, object] = {}
        self.memo[id(node)] = mapping
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, ScalarNode):
                self.source.error(
                    line, "a field name must be a word followed by a colon, like 'title:'"
                )
                continue
            key = key_node.value
            if key in first_line:
                self.source.error(
                    line,
                    f"'{key}' is given twice here (first on line {first_line[key]}): keep one",
                )
            else:
                first_line[key] = line
            mapping[key] = self.build(value_node, (*loc, key))
        return mapping

    def _lost_text(self, node: ScalarNode) -> None:
        """`title: Our #1 priority` silently becomes "Our": YAML reads ' #' as a comment."""
        if node.style is not None:
            return  # quoted, or a block after | or >: there '#' is text
        lost = _LOST_TEXT.match(self.source.text, node.end_mark.index)
        if lost:
            self.source.error(
                self.source.line_at(lost.start(1)),
                f"'{lost[1].strip()}' would be left out: after a space, '#' starts a comment; "
                "put the whole value in quotes to keep it",
            )

    @staticmethod
    def _scalar(node: ScalarNode) -> object:
        if node.tag == _NULL:
            return None
        if node.tag == _BOOL and node.value in _TRUE | {"false", "False", "FALSE"}:
            return node.value in _TRUE
        return node.value

    def _odd_tag(self, node: Node) -> None:
        tag = node.tag.replace("tag:yaml.org,2002:", "!!")
        self.source.error(
            node.start_mark.line + 1,
            f"'{tag}' is a YAML tag, which issue files do not use: remove it",
        )

    def _unquoted_tag(self, node: MappingNode, loc: Loc) -> str:
        """`title: {{ first_name }}` is a YAML mapping; the editor meant the text."""
        raw = self.source.text[node.start_mark.index : node.end_mark.index]
        name = f"{loc[-1]}: " if isinstance(loc[-1], str) else ""
        self.source.error(
            node.start_mark.line + 1,
            f"text that starts with '{{{{' must be in quotes, like {name}\"{raw} …\"",
        )
        return raw


# --- From data to an Issue ----------------------------------------------------------------------


def _validate(source: _Source, data: dict[str, object], slug: str) -> Issue | None:
    try:
        return Issue.model_validate({"slug": slug, **data})
    except ValidationError as error:
        found = error.errors(include_url=False)
        # 'subjcet' is not a field; did you mean 'subject'? already says 'subject' is missing.
        misspelt = {
            (tuple(d["loc"][:-1]), _closest(str(d["loc"][-1]), tuple(d["loc"][:-1])))
            for d in found
            if d["type"] == "extra_forbidden"
        }
        for details in found:
            loc = tuple(details["loc"])
            if details["type"] != "missing" or (loc[:-1], loc[-1]) not in misspelt:
                _translate(source, details)
        return None


def _translate(source: _Source, details: ErrorDetails) -> None:
    """Say one pydantic error in the editor's words, at its line."""
    loc: Loc = tuple(details["loc"])
    ctx: dict[str, Any] = dict(details.get("ctx") or {})
    kind = details["type"]
    if kind == "merge_tag":
        mistakes: list[MergeTagMistake] = ctx["mistakes"]
        lines = source.line_of_text(loc, [m.fragment for m in mistakes])
        for mistake, line in zip(mistakes, lines, strict=True):
            source.error(line, mistake.message)
        return
    if kind == "missing":
        source.error(source.line_of(loc[:-1]), _message(details, loc, ctx))
        return
    source.error(source.line_of(loc), _message(details, loc, ctx))


def _message(details: ErrorDetails, loc: Loc, ctx: dict[str, Any]) -> str:
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
        "parent": _place(loc[:-1]),
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
            return _place(loc)
        case (*_, str(field), int(index)):
            return f"entry {index + 1} of '{field}'"
        case (*_, str(field)):
            return f"'{field}'"
    return "the issue"


def _place(loc: Loc) -> str:
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


def _closest(key: str, loc: Loc) -> str | None:
    """The field at loc whose name is nearest to key, if one is near enough to be a typo."""
    model = _model_at(loc)
    close = difflib.get_close_matches(key.lower(), _fields(model), n=1) if model else []
    return close[0] if close else None


def _suggest(key: str, loc: Loc) -> str:
    """A nearby field name, or where the field belongs, or the list of fields at loc."""
    model = _model_at(loc)
    if model is None:
        return ""
    close = _closest(key, loc)
    if close:
        return f"; did you mean '{close}'?"
    fields = _fields(model)
    owners = [name for other, name in _MODEL_NAMES.items() if key in _fields(other)]
    if owners:
        return f"; '{key}' belongs in {' or '.join(owners)}: check the indentation"
    return f"; the fields of {_place(loc)} are: {', '.join(fields)}"


# --- Checks that need mailer.toml, and warnings --------------------------------------------------


def _check_segments(source: _Source, data: dict[str, object], newsletter: Newsletter) -> None:
    """Audiences and overrides must name segments mailer.toml defines."""
    for loc, name in _segment_names(data):
        if name not in newsletter.segment_names:
            source.error(source.line_of(loc), _unknown_segment(name, newsletter.segment_names))


def _segment_names(data: dict[str, object]) -> Iterator[tuple[Loc, str]]:
    """Every segment name written in the raw data, with its place; wrong types are pydantic's."""
    sections = data.get("sections")
    for i, section in enumerate(sections if isinstance(sections, list) else []):
        audience = section.get("audience") if isinstance(section, dict) else None
        if isinstance(audience, str):
            yield ("sections", i, "audience"), audience
        elif isinstance(audience, list):
            for j, name in enumerate(audience):
                if isinstance(name, str):
                    yield ("sections", i, "audience", j), name
    overrides = data.get("segments")
    if isinstance(overrides, dict):
        for name in overrides:
            yield ("segments", name), name


def _unknown_segment(name: str, known: list[str]) -> str:
    if not known:
        return f"'{name}' is not a segment: mailer.toml defines no segments"
    close = difflib.get_close_matches(name.lower(), known, n=1, cutoff=0.6)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"'{name}' is not a segment{hint}; mailer.toml defines: {', '.join(known)}"


_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_DATED_SLUG = re.compile(r"(\d{4}-\d{2}-\d{2})-")


def _warn(source: _Source, issue: Issue, slug: str) -> None:
    """Things that are allowed but probably not what the editor meant."""
    if not _SLUG.fullmatch(slug):
        source.warn(
            1,
            f"the file name '{slug}' becomes the issue's web address: use only lower-case "
            "letters, digits and hyphens, like 2026-12-03-winter-connections.yaml",
        )
    dated = _DATED_SLUG.match(slug)
    if dated:
        try:
            named = dt.date.fromisoformat(dated[1])
        except ValueError:
            named = None
        if named is not None and named != issue.date:
            source.warn(
                source.line_of(("date",)),
                f"the date is {issue.date.isoformat()} but the file name starts with "
                f"{dated[1]}: make them agree",
            )
    for i, section in enumerate(issue.sections):
        if section.layout != "stacked" and section.image is None:
            source.warn(
                source.line_of(("sections", i, "layout")),
                f"layout '{section.layout}' puts an image beside the text, but section {i + 1} "
                "has no image: add one, or remove the layout line",
            )


# --- Wording -----------------------------------------------------------------------------------

_REQUIRED_FIELDS = "subject, preheader, date, status, intro and sections"

# Errors raised by mailer.issue's own validators: their messages are already the editor's.
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
_YAML_HINTS: tuple[tuple[str, str, str], ...] = (
    (
        "mapping values are not allowed here",
        "problem",
        "a colon followed by a space inside a value (or a line indented too far): "
        "put the whole value in quotes, or put '|' after the field name and the text on the "
        "lines below it, indented",
    ),
    (
        "found character '\\t'",
        "problem",
        "this line has a tab where YAML needs spaces: use spaces to indent, and after colons",
    ),
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
