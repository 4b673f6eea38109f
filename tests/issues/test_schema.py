"""`mailer schema`: the issue file's JSON Schema, committed as issues/issue.schema.json for text editors."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers.project import ROOT
from jsonschema import Draft202012Validator
from typer.testing import CliRunner

from mailer.cli import app
from mailer.config import Newsletter
from mailer.issues.schema import issue_schema, schema_text
from mailer.issues.source import IssueYamlLoader

COMMITTED = ROOT / "issues" / "issue.schema.json"
SAMPLES = sorted((ROOT / "issues").glob("*.yaml"))


def read_issue(path: Path) -> Any:
    """An issue file as VS Code's YAML extension reads it: dates stay text."""
    return yaml.load(path.read_text(encoding="utf-8"), Loader=IssueYamlLoader)


@pytest.fixture(scope="module")
def validator(newsletter: Newsletter) -> Draft202012Validator:
    return Draft202012Validator(json.loads(COMMITTED.read_text(encoding="utf-8")))


def problems(validator: Draft202012Validator, data: Any) -> list[str]:
    return sorted(error.message for error in validator.iter_errors(data))


def fields(node: Any, where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every property of every object in the schema, with a path naming it."""
    if isinstance(node, dict):
        for name, value in (node.get("properties") or {}).items():
            yield f"{where}.{name}", value
        for key, value in node.items():
            yield from fields(value, f"{where}/{key}")
    elif isinstance(node, list):
        for value in node:
            yield from fields(value, where)


class TestTheCommittedSchema:
    def test_it_matches_the_models_and_mailer_toml(self, newsletter: Newsletter) -> None:
        """issues/issue.schema.json is what `mailer schema` generates now (run it with --write)."""
        assert schema_text(newsletter) == COMMITTED.read_text(encoding="utf-8")

    def test_it_is_a_draft_2020_12_schema(self) -> None:
        """The file is valid against the 2020-12 meta-schema, which it names."""
        schema = json.loads(COMMITTED.read_text(encoding="utf-8"))

        Draft202012Validator.check_schema(schema)
        assert "https://json-schema.org/draft/2020-12/schema" == schema["$schema"]

    def test_vs_code_maps_issue_files_to_it(self) -> None:
        """.vscode/settings.json points the YAML extension at the schema for issues/*.yaml."""
        settings = json.loads((ROOT / ".vscode" / "settings.json").read_text(encoding="utf-8"))

        assert {"./issues/issue.schema.json": ["issues/*.yaml"]} == settings["yaml.schemas"]

    def test_every_field_has_a_description_and_an_example(self) -> None:
        """Hovers and completion show the editor's guide's words and an example for each field."""
        schema = json.loads(COMMITTED.read_text(encoding="utf-8"))

        bare = [
            where
            for where, field in fields(schema)
            if not field.get("description") or not field.get("examples")
        ]
        assert [] == bare


class TestValidating:
    @pytest.mark.parametrize("path", SAMPLES, ids=[path.name for path in SAMPLES])
    def test_the_sample_issues_are_valid(self, validator: Draft202012Validator, path: Path) -> None:
        """Both sample issues pass the schema."""
        assert [] == problems(validator, read_issue(path))

    def test_a_misspelt_field_is_rejected(self, validator: Draft202012Validator) -> None:
        """'subjcet' is not a field, and 'subject' is then missing."""
        data = read_issue(SAMPLES[0])
        data["subjcet"] = data.pop("subject")

        assert [
            "'subject' is a required property",
            "Additional properties are not allowed ('subjcet' was unexpected)",
        ] == problems(validator, data)

    def test_a_misspelt_section_field_is_rejected(self, validator: Draft202012Validator) -> None:
        """Fields inside a section are checked too."""
        data = read_issue(SAMPLES[0])
        data["sections"][0]["imgae"] = data["sections"][0].pop("image")

        assert ["Additional properties are not allowed ('imgae' was unexpected)"] == problems(
            validator, data
        )

    def test_audiences_and_overrides_name_mailer_toml_segments(
        self, validator: Draft202012Validator
    ) -> None:
        """Only segments mailer.toml defines are accepted, as a list or a single name."""
        data = read_issue(SAMPLES[0])
        data["sections"][0]["audience"] = "youth"
        data["sections"][1]["audience"] = ["wales", "yuoth"]
        data["segments"]["scotlnd"] = {"subject": "Hello Scotland"}

        assert [
            "'scotlnd' is not one of ['youth', 'intergenerational', 'in-person', 'wales', "
            "'scotland', 'northern-ireland']",
            "'yuoth' is not one of ['youth', 'intergenerational', 'in-person', 'wales', "
            "'scotland', 'northern-ireland']",
        ] == problems(validator, data)

    def test_choices_and_dates(self, validator: Draft202012Validator) -> None:
        """A status that is not a choice, and a date not written year-month-day, are rejected."""
        data = read_issue(SAMPLES[0])
        data["status"] = "sent"
        data["date"] = "3/12/2026"

        assert [
            "'3/12/2026' does not match '^\\\\d{4}-\\\\d{2}-\\\\d{2}$'",
            "'sent' is not one of ['draft', 'ready']",
        ] == problems(validator, data)


class TestTheCommand:
    def test_prints_the_schema(self, newsletter: Newsletter) -> None:
        """`mailer schema` prints the schema of this project's issues."""
        result = CliRunner().invoke(
            app, ["schema"], env={"MAILER_CONFIG_PATH": str(ROOT / "mailer.toml")}
        )

        assert 0 == result.exit_code, result.stderr
        assert issue_schema(newsletter) == json.loads(result.stdout)

    def test_write_puts_it_in_the_issues_folder(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """--write writes issue.schema.json where issue files are, with the project's segments."""
        shutil.copy(ROOT / "mailer.toml", tmp_path)
        text = (tmp_path / "mailer.toml").read_text(encoding="utf-8")
        (tmp_path / "mailer.toml").write_text(
            text + '\n[segments.cornwall]\nlabel = "Cornwall"\nregions = ["Cornwall"]\n',
            encoding="utf-8",
        )
        (tmp_path / "issues").mkdir()
        monkeypatch.chdir(tmp_path)

        result = CliRunner().invoke(app, ["schema", "--write"])

        assert (0, "Wrote issues/issue.schema.json\n") == (result.exit_code, result.stdout)
        written = json.loads((tmp_path / "issues" / "issue.schema.json").read_text("utf-8"))
        assert "cornwall" in written["$defs"]["SegmentName"]["enum"]
