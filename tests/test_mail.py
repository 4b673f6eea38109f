"""mailer.mail.wrap_text: the plain-text part wrapped once the merge fields are filled in."""

from __future__ import annotations

from mailer.mail import wrap_text

LONG = "word " * 30


def test_short_text_is_returned_as_it_is() -> None:
    text = "Hello,\n\n  indented\n"
    assert text is wrap_text(text)


def test_a_paragraph_is_filled_to_72_columns() -> None:
    lines = wrap_text(LONG.strip()).splitlines()
    assert len(lines) > 1 and all(len(line) <= 72 for line in lines)
    assert all(len(line) > 60 for line in lines[:-1])


def test_list_items_and_quotes_hang_under_their_lead() -> None:
    """'- ', '1. ' and '> ' start the first line; the next ones line up under the text."""
    wrapped = wrap_text(f"- {LONG}\n12. {LONG}\n> {LONG}\n> - {LONG}")
    lines = wrapped.splitlines()
    assert lines[0].startswith("- word") and lines[1].startswith("  word")
    numbered = lines.index(next(line for line in lines if line.startswith("12. ")))
    assert lines[numbered + 1].startswith("    word")
    quoted = [line for line in lines if line.startswith(">")]
    assert quoted[0].startswith("> word") and quoted[1].startswith("> word")
    assert any(line.startswith("> - word") for line in quoted)
    assert any(line.startswith(">   word") for line in quoted)


def test_urls_are_never_broken() -> None:
    """A URL longer than the line stays whole, on a line of its own."""
    url = "https://example.org/" + "a" * 90
    wrapped = wrap_text(f"Read the full report here: {url} and tell us what you think.")
    assert url in wrapped.splitlines()


def test_code_and_underlined_titles_are_left_alone() -> None:
    """Indented code keeps its lines; a long title keeps its underline beneath it."""
    code = "    " + "x = 1; " * 15
    title = "A title " * 10
    text = f"{code}\n\n{title}\n{'-' * len(title)}\n"
    assert text == wrap_text(text)


def test_only_content_that_asks_is_wrapped() -> None:
    """The newsletter's text (wrap=True) is wrapped once the values are in; other mail
    (notices, confirmations) is sent as its template wrote it."""
    from mailer.mail import Content, personalise, placeholder

    text = f"Dear {placeholder('first_name')}, {LONG}"
    values = {"first_name": "Maximiliana-Alexandra"}
    wrapped = personalise(Content(subject="s", html="h", text=text, wrap=True), values).text
    as_written = personalise(Content(subject="s", html="h", text=text), values).text
    assert wrapped.startswith("Dear Maximiliana-Alexandra, word") and "\n" in wrapped
    assert "\n" not in as_written
