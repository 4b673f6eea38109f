"""`mailer subscribers ...` through the real command line, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from helpers.project import ROOT
from typer.testing import CliRunner, Result

from mailer.cli import app

SAMPLE = ROOT / "subscribers" / "members.csv"
DATA = ROOT / "tests" / "data"


@pytest.fixture(autouse=True)
def environment(
    database_url: str, project_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each test has its own database and the project's mailer.toml, and runs in tmp_path."""
    monkeypatch.setenv("MAILER_DATABASE_URL", database_url)
    monkeypatch.setenv("MAILER_CONFIG_PATH", str(project_root / "mailer.toml"))
    monkeypatch.chdir(tmp_path)


def mailer(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(app, ["subscribers", *args], input=input)


def ok(*args: str) -> Result:
    result = mailer(*args)
    assert 0 == result.exit_code, result.output + result.stderr
    return result


def as_json(*args: str) -> Any:
    return json.loads(ok(*args, "--json").stdout)


class TestImportCommand:
    def test_imports_the_sample_list_and_prints_the_counts(self) -> None:
        """The README's first command: the sample list goes in, with a table of counts."""
        result = ok("import", str(SAMPLE))
        assert "added" in result.stdout and "60" in result.stdout
        assert 60 == len(as_json("list"))

    def test_a_second_import_changes_nothing(self) -> None:
        """Running the same import again reports every row unchanged."""
        ok("import", str(SAMPLE))
        second = ok("import", str(SAMPLE))
        assert "│     0 │       0 │        60 │       0 │          0 │" in second.stdout

    def test_problems_go_to_stderr_with_lines_and_nothing_is_imported(self) -> None:
        """A bad row fails the import with PATH:LINE: messages and exit status 1."""
        Path("members.csv").write_text(
            "email,name\njane@,Jane\nbob@example.org,Bob\n", encoding="utf-8"
        )
        result = mailer("import", "members.csv")
        assert 1 == result.exit_code
        assert "members.csv:2: 'jane@' is not a valid email address" in result.stderr
        assert "nothing was changed" in result.stderr
        assert [] == as_json("list")

    def test_skip_invalid_imports_the_good_rows(self) -> None:
        """--skip-invalid reports the bad rows as skipped and imports the rest."""
        Path("members.csv").write_text(
            "email,name\njane@,Jane\nbob@example.org,Bob\n", encoding="utf-8"
        )
        result = ok("import", "members.csv", "--skip-invalid")
        assert "skipped: members.csv:2: 'jane@' is not a valid email address" in result.stderr
        assert ["bob@example.org"] == [m["email"] for m in as_json("list")]

    def test_dry_run_changes_nothing(self) -> None:
        """--dry-run counts and leaves the list empty."""
        result = ok("import", str(SAMPLE), "--dry-run")
        assert "dry run" in result.stdout
        assert [] == as_json("list")


class TestMovingIn:
    def test_a_mailchimp_zip_names_its_format_and_counts_per_file_and_status(self) -> None:
        """The import says what it read and shows members per status, file by file."""
        shutil.copy(DATA / "mailchimp-audience-export.zip", "export.zip")
        result = ok("import", "export.zip", "--dry-run")
        assert "Read export.zip (3 files) as a Mailchimp export." in result.stdout
        assert "Members by status if imported" in result.stdout
        rows = [line.split("│")[1:-1] for line in result.stdout.splitlines() if "│" in line]
        cells = [[cell.strip() for cell in row] for row in rows]
        assert [["total", "4", "2", "1", "0"]] == [row for row in cells if row[0] == "total"]
        assert [] == as_json("list")
        ok("import", "export.zip")
        left = {m["email"]: m["status"] for m in as_json("list") if m["status"] != "active"}
        assert {
            "rhys@swansea-youth.example.org": "unsubscribed",
            "priya@bradford-carers.example.org": "unsubscribed",
            "chidi@old-youth-trust.example.net": "bounced",
        } == left

    def test_mailer_toml_column_map_is_used(
        self, project_root: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The [imports] table of mailer.toml renames columns and maps values."""
        config = (project_root / "mailer.toml").read_text(encoding="utf-8")
        config += (
            '\n[imports.columns]\n"Work email" = "email"\n"Contact" = "name"\n"Nation" = "region"\n'
            '\n[imports.values.region]\nWLS = "Wales"\n'
        )
        # The project's own [imports] tables are replaced by this test's.
        config = (
            config[: config.index("[imports.columns]")]
            + config[config.rindex("[imports.columns]") :]
        )
        Path("mailer.toml").write_text(config, encoding="utf-8")
        monkeypatch.setenv("MAILER_CONFIG_PATH", "mailer.toml")
        shutil.copy(DATA / "mapped-spreadsheet.csv", "members.csv")
        result = ok("import", "members.csv")
        assert "as a members CSV" in result.stdout
        member = as_json("show", "rhian@aberystwyth-walks.example.org")
        assert ("Rhian Morgan", "Wales", ["wales"]) == (
            member["name"],
            member["region"],
            member["segments"],
        )

    def test_a_wrong_column_map_is_a_configuration_error(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A heading mapped to no column name fails before anything is read."""
        Path("mailer.toml").write_text(
            Path(ROOT / "mailer.toml")
            .read_text(encoding="utf-8")
            .replace('"Interests" = "tags"', '"Interests" = "--"'),
            encoding="utf-8",
        )
        monkeypatch.setenv("MAILER_CONFIG_PATH", "mailer.toml")
        result = mailer("import", str(SAMPLE))
        assert 2 == result.exit_code
        assert (
            "imports.columns: Value error, the heading 'Interests' is mapped to '--'"
            in result.stderr
        )

    def test_from_forces_a_format(self) -> None:
        """--from listmonk on a spreadsheet fails with what listmonk's columns would be."""
        result = mailer("import", str(SAMPLE), "--from", "listmonk")
        assert 1 == result.exit_code
        assert "members.csv:1: this is not a listmonk CSV" in result.stderr

    def test_skip_invalid_exits_non_zero_when_nothing_could_be_imported(self) -> None:
        """Every row bad: --skip-invalid fails, with every problem, instead of reporting success."""
        Path("members.csv").write_text("email\njane@\nbob@\n", encoding="utf-8")
        result = mailer("import", "members.csv", "--skip-invalid")
        assert 1 == result.exit_code
        assert "members.csv:3: 'bob@' is not a valid email address" in result.stderr
        assert "nothing was changed" in result.stderr


class TestListAndShow:
    def test_list_json_has_segments_and_filters_by_segment_and_status(self) -> None:
        """--json lists members with their segments; --segment and --status narrow it."""
        ok("import", str(SAMPLE))
        ok("unsubscribe", "hello@cardiff-lunch-club.example.org")
        wales = as_json("list", "--segment", "wales")
        assert 6 == len(wales)
        assert all(
            "wales" in member["segments"] and "Wales" == member["region"] for member in wales
        )
        active_wales = as_json("list", "--segment", "wales", "--status", "active")
        assert 5 == len(active_wales)
        [gone] = as_json("list", "--status", "unsubscribed")
        assert "hello@cardiff-lunch-club.example.org" == gone["email"]

    def test_list_prints_a_table_for_people(self) -> None:
        """Without --json, list prints a table and a count."""
        ok("import", str(SAMPLE))
        result = ok("list", "--segment", "northern-ireland")
        assert "siobhan.kelly@belfast-youth-forum.example.org" in result.stdout
        assert "5 members" in result.stdout

    @pytest.mark.parametrize("columns", [80, 140])
    def test_a_long_list_prints_the_table_rich_would_draw(
        self, columns: int, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Past a page, rows are drawn without rich, the same as rich draws them in one table."""
        from mailer.audience.segments import SegmentRules
        from mailer.cli import subscribers
        from mailer.cli.common import console
        from mailer.config import get_settings, load_newsletter
        from mailer.store import open_store

        ok("import", str(SAMPLE))
        ok("unsubscribe", "iona.macleod@highland-connect.example.org")
        monkeypatch.setattr(subscribers, "PAGE", 7)
        monkeypatch.setattr(console, "_width", columns)  # "width" would stay set after
        paged = ok("list").stdout
        rules = SegmentRules.of(load_newsletter(get_settings().config_path))
        with open_store(get_settings().database_url) as store:
            rows = [(member, rules.of_member(member)) for member in store.stream()]
        width = max(len(member.email) for member, _ in rows)
        with console.capture() as capture:
            console.print(subscribers._members_table(rows, email_width=width))
        assert capture.get() + "60 members\n" == paged
        assert "│ unsubscribed │" in paged

    def test_an_unknown_segment_is_an_error(self) -> None:
        """A segment mailer.toml does not define fails with the names it does define."""
        result = mailer("list", "--segment", "walse")
        assert 2 == result.exit_code
        assert "there is no segment named 'walse'" in result.stderr

    def test_show_json_has_details_segments_and_history(self) -> None:
        """show --json gives one member with segments and every event."""
        ok("import", str(SAMPLE))
        member = as_json("show", "Aled.Pritchard@Bridgend-Youth-Connect.example.org")
        assert "Aled Pritchard" == member["name"]
        assert {"member_type": "charity", "size": "small"} == member["attributes"]
        assert ["in-person", "wales", "youth"] == member["segments"]
        assert ["added"] == [event["kind"] for event in member["history"]]

    def test_show_prints_details_for_people(self) -> None:
        """Without --json, show prints the member's details and history."""
        ok("import", str(SAMPLE))
        result = ok("show", "iona.macleod@highland-connect.example.org")
        assert "Highland Connect" in result.stdout and "History" in result.stdout

    def test_show_of_a_stranger_fails(self) -> None:
        """An address not on the list is an error on stderr."""
        result = mailer("show", "nobody@example.org")
        assert 1 == result.exit_code
        assert "no subscriber with the address 'nobody@example.org'" in result.stderr


class TestChanging:
    def test_add_with_details(self) -> None:
        """add takes details, tags and attributes for every address given."""
        ok(
            "add",
            "jane@example.org",
            "bob@example.org",
            "--name",
            "Someone",
            "--region",
            "Wales",
            "--tag",
            "youth-loneliness",
            "--tag",
            "in-person;rural",
            "--attribute",
            "member_type=charity",
        )
        jane = as_json("show", "jane@example.org")
        assert ("Someone", "Wales", "active") == (jane["name"], jane["region"], jane["status"])
        assert ["youth-loneliness", "in-person", "rural"] == jane["tags"]
        assert {"member_type": "charity"} == jane["attributes"]
        assert ["in-person", "wales", "youth"] == jane["segments"]
        assert "active" == as_json("show", "bob@example.org")["status"]

    def test_add_pending(self) -> None:
        """--pending adds someone who is not mailed until they confirm."""
        ok("add", "jane@example.org", "--pending")
        assert "pending" == as_json("show", "jane@example.org")["status"]

    def test_add_reports_every_bad_address_and_adds_none(self) -> None:
        """Bad addresses are all reported, by position, and nothing is added."""
        result = mailer("add", "ok@example.org", "jane@", "bob")
        assert 1 == result.exit_code
        assert "mailer subscribers add:2: 'jane@' is not a valid email address" in result.stderr
        assert "mailer subscribers add:3: 'bob' is not a valid email address" in result.stderr
        assert [] == as_json("list")

    def test_add_refuses_an_existing_member(self) -> None:
        """add never overwrites; it says the member is already there."""
        ok("add", "jane@example.org")
        result = mailer("add", "Jane@Example.org")
        assert 1 == result.exit_code
        assert "is already on the list (status active)" in result.stderr

    def test_unsubscribe_then_resubscribe_is_logged(self) -> None:
        """unsubscribe sticks through imports; only resubscribe, with a reason, revives."""
        Path("members.csv").write_text("email,name\njane@example.org,Jane\n", encoding="utf-8")
        ok("import", "members.csv")
        ok("unsubscribe", "jane@example.org", "--reason", "phoned the office")
        ok("import", "members.csv")
        assert "unsubscribed" == as_json("show", "jane@example.org")["status"]
        assert 2 == mailer("resubscribe", "jane@example.org").exit_code  # the reason is required
        ok("resubscribe", "jane@example.org", "--reason", "asked at the AGM")
        member = as_json("show", "jane@example.org")
        assert "active" == member["status"]
        assert [
            ("added", None, "active"),
            ("status", "active", "unsubscribed"),
            ("resubscribed", "unsubscribed", "active"),
        ] == [(e["kind"], e["status_from"], e["status_to"]) for e in member["history"]]
        assert "mailer subscribers resubscribe" == member["history"][-1]["source"]

    def test_forget_erases_and_suppresses(self) -> None:
        """forget asks first, erases the member, and a later import counts them as suppressed."""
        Path("members.csv").write_text("email,name\njane@example.org,Jane\n", encoding="utf-8")
        ok("import", "members.csv")
        assert 1 == mailer("forget", "jane@example.org", input="n\n").exit_code
        assert 1 == len(as_json("list"))
        ok("forget", "jane@example.org", "--yes")
        assert [] == as_json("list")
        again = ok("import", "members.csv")
        assert "│     0 │       0 │         0 │       0 │          1 │" in again.stdout
        result = mailer("add", "jane@example.org")
        assert 1 == result.exit_code
        assert "was forgotten at the member's request" in result.stderr


class TestLinksAndSignUps:
    def test_revoke_links_moves_the_member_to_new_links_and_says_so(self) -> None:
        """Every link sent so far stops working; the member stays as they were."""
        ok("add", "jane@example.org")
        result = ok("revoke-links", "jane@example.org", "--reason", "posted on a forum")
        assert "stopped working" in result.stdout
        jane = as_json("show", "jane@example.org")
        assert (1, "active") == (jane["link_version"], jane["status"])
        assert "links revoked: posted on a forum" == jane["history"][-1]["detail"]

    def test_revoke_links_of_someone_not_on_the_list(self) -> None:
        result = mailer("revoke-links", "nobody@example.org")
        assert 1 == result.exit_code
        assert "nobody@example.org" in result.stderr

    def test_purge_unconfirmed_deletes_only_expired_sign_ups(self) -> None:
        import datetime as dt

        from mailer.config import get_settings
        from mailer.store import MemberRecord, SubscriberStatus, open_store

        old = dt.datetime.now(dt.UTC) - dt.timedelta(days=8)
        with open_store(get_settings().database_url) as store:
            store.add(
                [
                    MemberRecord(
                        "old@example.org", status=SubscriberStatus.pending, status_changed_at=old
                    ),
                    MemberRecord("new@example.org", status=SubscriberStatus.pending),
                ],
                source="test",
            )
        result = ok("purge-unconfirmed")
        assert "Deleted 1 unconfirmed sign-up older than 7 days." in " ".join(result.stdout.split())
        assert ["new@example.org"] == [m["email"] for m in as_json("list")]


class TestExportCommand:
    def test_export_to_a_file_round_trips(self) -> None:
        """An exported file imports back with every member unchanged."""
        ok("import", str(SAMPLE))
        ok("unsubscribe", "hello@cardiff-lunch-club.example.org")
        result = ok("export", "export.csv")
        assert "Wrote 60 members to export.csv." in result.stderr
        assert (
            Path("export.csv").read_bytes().startswith(b"\xef\xbb\xbf")
        )  # a BOM, for spreadsheets
        again = ok("import", "export.csv")
        assert "│     0 │       0 │        60 │       0 │          0 │" in again.stdout

    def test_export_one_status(self) -> None:
        """--status exports only the members with that status."""
        ok("add", "jane@example.org", "bob@example.org")
        ok("unsubscribe", "bob@example.org")
        lines = ok("export", "--status", "unsubscribed").stdout.splitlines()
        assert 2 == len(lines)
        assert lines[1].startswith("bob@example.org,")

    def test_export_to_stdout(self) -> None:
        """Without a file, the CSV goes to standard output, with status and dates."""
        ok("add", "jane@example.org", "--name", "Jane")
        lines = ok("export").stdout.splitlines()
        assert lines[0].startswith("email,name,organisation,region,tags,status,status_changed_at")
        assert lines[1].startswith("jane@example.org,Jane,,,,active,")


class TestHelp:
    @pytest.mark.parametrize(
        "command",
        ["import", "export", "list", "show", "add", "unsubscribe", "resubscribe", "forget"],
    )
    def test_every_command_has_help(self, command: str) -> None:
        """--help explains each command."""
        result = ok(command, "--help")
        assert "Usage:" in result.stdout
