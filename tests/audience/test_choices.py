"""What members choose for themselves: checked like the pages and the API check it, made into tags."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailer.audience.choices import check_choices, record_for, sections_in_words, tags_with
from mailer.config import Newsletter, load_newsletter
from mailer.errors import ConfigError, InvalidChoice


def test_interests_become_tags_and_other_tags_stay(newsletter: Newsletter) -> None:
    tags = ("board", "Youth-Loneliness", "in-person")
    # Kept through the tag they have (any capitals); dropped; added by the segment's first tag.
    assert ("board", "Youth-Loneliness", "intergenerational") == tags_with(
        tags, frozenset({"youth", "intergenerational"}), newsletter
    )
    assert ("board",) == tags_with(tags, frozenset(), newsletter)


def test_a_record_leaves_what_was_not_chosen(newsletter: Newsletter) -> None:
    choices = check_choices(newsletter, region=" wales ")
    record = record_for("a@example.org", choices, newsletter, ("board",))
    assert (None, None, "Wales", None) == (
        record.name,
        record.organisation,
        record.region,
        record.tags,
    )


@pytest.mark.parametrize(
    ("given", "field"),
    [
        ({"name": "Ann =?utf-8?q?x?="}, "name"),
        ({"organisation": "A\x00B"}, "organisation"),
        ({"organisation": "x" * 201}, "organisation"),
        ({"region": "Atlantis"}, "region"),
        ({"interests": ["wales"]}, "interests"),
    ],
)
def test_bad_choices_name_their_field(
    newsletter: Newsletter, given: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidChoice) as raised:
        check_choices(newsletter, **given)  # type: ignore[arg-type]
    assert field == raised.value.field


def test_line_breaks_in_a_name_become_spaces(newsletter: Newsletter) -> None:
    assert "Ann Bcc: x" == check_choices(newsletter, name="Ann\r\nBcc: x").name


def test_sections_in_words(newsletter: Newsletter) -> None:
    assert "You get the sections every member gets." == sections_in_words([], [], newsletter)
    assert (
        "You get the sections every member gets, and those for Youth loneliness and Wales."
        == sections_in_words(["wales", "youth", "scotland"], ["scotland"], newsletter)
    )


def _toml_with(tmp_path: Path, project_root: Path, old: str, new: str) -> Path:
    text = (project_root / "mailer.toml").read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "mailer.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def test_a_choosable_segment_must_be_defined_by_tags_alone(
    tmp_path: Path, project_root: Path
) -> None:
    path = _toml_with(
        tmp_path, project_root, 'regions = ["Wales"]', 'regions = ["Wales"]\nchoosable = true'
    )
    with pytest.raises(ConfigError, match=r"segments.3: .*'wales' is choosable.*tags alone"):
        load_newsletter(path)


def test_regions_are_listed_once(tmp_path: Path, project_root: Path) -> None:
    path = _toml_with(tmp_path, project_root, '"England",', '"England", "england ",')
    with pytest.raises(ConfigError, match=r"regions: .*listed twice"):
        load_newsletter(path)
