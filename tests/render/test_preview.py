"""`mailer preview`: every variant written to a folder, an index page, and a table."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from helpers.project import RENDER_SAMPLE, ROOT
from typer.testing import CliRunner, Result

from mailer.cli import app
from mailer.config import Newsletter
from mailer.errors import ConfigError
from mailer.issues.model import Issue
from mailer.render.preview import preview_keys
from mailer.store import MemberRecord, open_store

DEFAULT_VARIANTS = ["general", "youth", "intergenerational", "in-person", "wales"]


@pytest.fixture
def issue_file(tmp_path: Path) -> Path:
    target = tmp_path / "issues" / "2025-06-12-sample.yaml"
    target.parent.mkdir()
    shutil.copy(RENDER_SAMPLE, target)
    return target


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "preview"


@pytest.fixture(autouse=True)
def own_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test's subscriber list is its own (empty unless the test adds members)."""
    url = f"sqlite:///{tmp_path / 'mailer.db'}"
    monkeypatch.setenv("MAILER_DATABASE_URL", url)
    return url


def run(*args: str) -> Result:
    env = {
        "MAILER_CONFIG_PATH": str(ROOT / "mailer.toml"),
        "MAILER_BASE_URL": "https://news.example.org",
        "COLUMNS": "200",
    }
    return CliRunner().invoke(app, ["preview", *args], env=env)


def variants_written(out: Path) -> list[str]:
    return sorted(path.stem for path in out.glob("*.html") if path.name != "index.html")


class TestPreviewCommand:
    def test_writes_html_and_text_for_each_default_variant(
        self, issue_file: Path, out: Path
    ) -> None:
        """By default: the general variant and one per segment the issue names, HTML and text."""
        result = run(str(issue_file), "--out", str(out))
        assert 0 == result.exit_code, result.stderr
        assert sorted(DEFAULT_VARIANTS) == variants_written(out)
        assert sorted(DEFAULT_VARIANTS) == sorted(path.stem for path in out.glob("*.txt"))

    def test_files_are_personalised_for_the_sample_member(
        self, issue_file: Path, out: Path
    ) -> None:
        """Merge tags and links are filled in for the sample member, Alex Morgan."""
        run(str(issue_file), "--out", str(out))
        text = (out / "youth.txt").read_text(encoding="utf-8")
        assert "Hi Alex," in text
        assert "Unsubscribe: https://news.example.org/unsubscribe/preview-token" in text
        assert "https://news.example.org/archive/2025-06-12-sample" in text

    def test_prints_a_table_of_variants(self, issue_file: Path, out: Path) -> None:
        """The table names each variant, its segments, subject, sizes and warnings."""
        result = run(str(issue_file), "--out", str(out))
        for header in ("Variant", "Segments", "Subject", "HTML", "Text", "Warnings"):
            assert header in result.stdout
        assert "Youth loneliness" in result.stdout
        assert "New research: what 2,000 young people told us about loneliness" in result.stdout
        assert re.search(r"youth\s.*\d+\.\d KB\s.*\d+\.\d KB", result.stdout)

    def test_index_shows_every_variant_at_two_widths(self, issue_file: Path, out: Path) -> None:
        """index.html frames each variant at phone and desktop widths, with its subject."""
        run(str(issue_file), "--out", str(out))
        index = (out / "index.html").read_text(encoding="utf-8")
        for name in DEFAULT_VARIANTS:
            assert f'<iframe class="phone" src="{name}.html"' in index
            assert f'<iframe class="desktop" src="{name}.html"' in index
        assert "Connected Communities in Wales: events this month and a new toolkit" in index

    def test_segment_restricts_to_its_variants(self, issue_file: Path, out: Path) -> None:
        """--segment youth previews only what members of the youth segment get."""
        result = run(str(issue_file), "--out", str(out), "--segment", "youth")
        assert 0 == result.exit_code, result.stderr
        assert ["youth"] == variants_written(out)

    def test_segment_combination_previews_that_variant(self, issue_file: Path, out: Path) -> None:
        """--segment youth+wales previews the variant for members in both segments."""
        run(str(issue_file), "--out", str(out), "--segment", "wales+youth")
        assert ["youth+wales"] == variants_written(out)
        assert "Events in Wales" in (out / "youth+wales.txt").read_text(encoding="utf-8")

    def test_segment_the_issue_ignores_gets_the_general_variant(
        self, issue_file: Path, out: Path
    ) -> None:
        """A segment the issue never names sees the general variant, so that is what is shown."""
        run(str(issue_file), "--out", str(out), "--segment", "scotland")
        assert ["general"] == variants_written(out)

    def test_unknown_segment_is_an_error_naming_the_known_ones(
        self, issue_file: Path, out: Path
    ) -> None:
        """An unknown --segment fails on stderr, listing the segments mailer.toml defines."""
        result = run(str(issue_file), "--out", str(out), "--segment", "yuoth")
        assert 0 != result.exit_code
        assert "no segment named 'yuoth'" in result.stderr
        assert (
            "youth, intergenerational, in-person, wales, scotland, northern-ireland"
            in result.stderr
        )
        assert not out.exists()

    def test_invalid_issue_reports_the_loaders_problems(self, tmp_path: Path, out: Path) -> None:
        """An issue file with problems exits 1 with PATH:LINE messages and writes nothing."""
        bad = tmp_path / "2025-06-12-bad.yaml"
        bad.write_text("subject: Hello\nsections: []\n", encoding="utf-8")
        result = run(str(bad), "--out", str(out))
        assert 1 == result.exit_code
        assert re.search(r"2025-06-12-bad\.yaml:\d+: ", result.stderr)
        assert not out.exists()

    def test_missing_issue_file_is_an_error(self, tmp_path: Path, out: Path) -> None:
        """A path that does not exist fails with a message, not a traceback."""
        result = run(str(tmp_path / "nope.yaml"), "--out", str(out))
        assert 1 == result.exit_code
        assert "nope.yaml" in result.stderr and "Traceback" not in result.stderr


class TestTheList:
    def test_every_variant_the_list_gets_is_written_with_its_members(
        self, issue_file: Path, out: Path, own_list: str
    ) -> None:
        """Combinations real members have are previewed too, and the table counts members."""
        with open_store(own_list) as store:
            store.add(
                [
                    MemberRecord(email="a@example.org", region="Wales", tags=("youth-loneliness",)),
                    MemberRecord(email="b@example.org", region="Wales", tags=("youth-loneliness",)),
                    MemberRecord(email="c@example.org", region="Scotland"),
                ],
                source="test",
            )

        result = run(str(issue_file), "--out", str(out))

        assert 0 == result.exit_code, result.stderr
        assert sorted([*DEFAULT_VARIANTS, "youth+wales"]) == variants_written(out)
        # A combined variant's name breaks after its "+", its segments' labels one a line.
        assert re.search(
            r"│ youth\+\s+│ Youth loneliness\s+│\s+2 │.*\n│ wales\s+│ Wales\s+│", result.stdout
        )
        assert re.search(
            r"│ general\s+│ members in none of the issue's segments\s+│\s+1 │", result.stdout
        )
        assert "2 on the list get this variant" in (out / "index.html").read_text("utf-8")

    def test_files_of_variants_no_longer_written_are_removed(
        self, issue_file: Path, out: Path
    ) -> None:
        """A second preview removes what the first wrote and it does not, and nothing else."""
        run(str(issue_file), "--out", str(out))
        (out / "notes.txt").write_text("mine", encoding="utf-8")

        run(str(issue_file), "--out", str(out), "--segment", "youth")

        assert ["youth"] == variants_written(out)
        assert ["notes", "youth"] == sorted(path.stem for path in out.glob("*.txt"))


class TestPreviewKeys:
    def test_defaults_are_general_then_each_segment_in_mailer_toml_order(
        self, sample: Issue, newsletter: Newsletter
    ) -> None:
        """The general key first, then one single-segment key per segment the issue names."""
        expected = [frozenset(), *(frozenset([name]) for name in DEFAULT_VARIANTS[1:])]
        assert expected == preview_keys(sample, newsletter)

    def test_extra_combinations_are_added(self, sample: Issue, newsletter: Newsletter) -> None:
        """Combination keys passed in (e.g. from real members) are previewed too, once."""
        combo = frozenset({"youth", "wales"})
        keys = preview_keys(sample, newsletter, extra=[combo, combo])
        assert combo == keys[-1] and 1 == keys.count(combo)

    def test_only_keeps_every_variant_including_the_segment(
        self, sample: Issue, newsletter: Newsletter
    ) -> None:
        """--segment keeps the segment's own variant and the combinations that include it."""
        combos = [frozenset({"youth", "wales"}), frozenset({"in-person", "wales"})]
        keys = preview_keys(sample, newsletter, only=["youth"], extra=combos)
        assert [frozenset({"youth"}), frozenset({"youth", "wales"})] == keys

    def test_unknown_segment_raises_config_error(
        self, sample: Issue, newsletter: Newsletter
    ) -> None:
        """A segment mailer.toml does not define is refused, naming the defined ones."""
        with pytest.raises(ConfigError, match=r"mailer\.toml defines: youth"):
            preview_keys(sample, newsletter, only=["youth+nope"])
