"""An issue file as it is read: bytes to text to YAML nodes with line marks, then plain data.

:class:`IssueSource` holds one file's text, its YAML nodes and the problems found
so far, and finds the line of any place in the data (``("sections", 2, "title")``)
so that every problem is pinned to where the editor wrote it. :class:`NodeBuilder`
turns the nodes into plain data, keeping text as written (``yes`` stays a word,
dates stay text until the model reads them). :class:`IssueYamlLoader` is YAML with
only what an editor means: no tags, no implicit dates or numbers.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from mailer.errors import Problem
from mailer.issues.lines import line_problems
from mailer.issues.model import Issue, IssueCheck, Loc
from mailer.issues.wording import COLON_IN_VALUE, REQUIRED_FIELDS, TAB, YAML_HINTS

__all__ = ["IssueSource", "IssueYamlLoader", "NodeBuilder"]


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


# --- The file being checked -------------------------------------------------------------

# The characters YAML counts as line breaks; marks count lines the same way.
_LINE_BREAK = re.compile(r"\r\n|[\n\r\x85\u2028\u2029]")
_NOT_UTF8 = re.compile(r"[\udc80-\udcff]")  # bytes that surrogateescape could not decode


@dataclass
class IssueSource:
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

    def result(self, issue: Issue | None) -> IssueCheck:
        errors = tuple(sorted(dict.fromkeys(self.errors)))
        return IssueCheck(
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
            self.error(1, f"the file is empty: an issue needs {REQUIRED_FIELDS}")
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
            self.error(1, f"the file has no fields: an issue needs {REQUIRED_FIELDS}")
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
        _, which, message = next((hint for hint in YAML_HINTS if hint[0] in said), default)
        mark = error.context_mark if which == "context" else error.problem_mark
        mark = mark or error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else 1
        self.error(line, message)
        # YAML stops at its first error: report what other lines show by themselves too.
        for other, problem in line_problems(self.text, TAB, COLON_IN_VALUE):
            if other != line:
                self.error(other, problem)

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


class NodeBuilder:
    """Plain data from YAML nodes, noting duplicate keys and YAML features issues do not use."""

    def __init__(self, source: IssueSource) -> None:
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
