"""`import` and `export` of members CSV files, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from mailer.errors import SubscriberDataError
from mailer.store import ImportCounts, MemberRecord, SubscriberStatus, SubscriberStore, open_store
from mailer.store.csvio import ImportResult, import_members, write_members

# Run in tmp_path, so that messages name files as `members.csv:LINE:`.
pytestmark = pytest.mark.usefixtures("in_tmp")

HEADER = "email,name,organisation,region,tags,member_type\n"


def write(text: str | bytes, name: str = "members.csv") -> Path:
    path = Path(name)
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8", newline="")
    else:
        path.write_bytes(text)
    return path


def run(store: SubscriberStore, text: str | bytes, **options: bool) -> ImportResult:
    return import_members(store, write(text), **options)


def problems(store: SubscriberStore, text: str | bytes) -> list[str]:
    """The problem lines an import reports; it must change nothing."""
    with pytest.raises(SubscriberDataError) as caught:
        run(store, text)
    assert [] == store.list_subscribers()
    return [str(problem) for problem in caught.value.problems]


class TestReading:
    def test_imports_every_column_and_keeps_others_as_attributes(
        self, store: SubscriberStore
    ) -> None:
        """Known columns become fields; any other column is kept as an attribute."""
        result = run(
            store,
            HEADER + "jane@example.org,Jane Doe,Leeds Lunch Club,Yorkshire and the Humber,"
            '"in-person; youth-loneliness",charity\n',
        )
        assert ImportCounts(added=1) == result.counts
        member = store.get("jane@example.org")
        assert ("Jane Doe", "Leeds Lunch Club", "Yorkshire and the Humber") == (
            member.name,
            member.organisation,
            member.region,
        )
        assert (("in-person", "youth-loneliness"), {"member_type": "charity"}) == (
            member.tags,
            member.attributes,
        )

    def test_reads_utf8_with_a_bom_and_semicolons(self, store: SubscriberStore) -> None:
        """Excel's 'CSV UTF-8' in European locales: a BOM and semicolons between cells."""
        text = "email;name;region;tags\r\nsiobhan@example.org;Siobhán Ó Briain;Northern Ireland;youth, in-person\r\n"
        run(store, "\ufeff" + text)
        member = store.get("siobhan@example.org")
        assert ("Siobhán Ó Briain", ("youth", "in-person")) == (member.name, member.tags)

    def test_header_names_are_forgiving(self, store: SubscriberStore) -> None:
        """Headers match whatever their case, spacing or a common alias; attributes get tidy names."""
        run(
            store,
            "E-mail,Name,Organization,Member Type\njane@example.org,Jane,Leeds Lunch Club,charity\n",
        )
        member = store.get("jane@example.org")
        assert ("Leeds Lunch Club", {"member_type": "charity"}) == (
            member.organisation,
            member.attributes,
        )

    def test_tags_are_split_trimmed_and_deduplicated(self, store: SubscriberStore) -> None:
        """Tags in one cell, separated by ; or , with stray spaces and repeats, come out clean."""
        run(store, 'email,tags\njane@example.org," youth ;in-person,, Youth ;"\n')
        assert ("youth", "in-person") == store.get("jane@example.org").tags

    def test_addresses_are_normalised(self, store: SubscriberStore) -> None:
        """Spaces are stripped and the domain lower-cased, as email-validator normalises."""
        run(store, "email\n  Jane.Doe@EXAMPLE.org \n")
        assert ["Jane.Doe@example.org"] == [m.email for m in store.list_subscribers()]

    def test_blank_rows_are_ignored(self, store: SubscriberStore) -> None:
        """Empty rows a spreadsheet leaves at the end are not problems."""
        result = run(store, "email,name\njane@example.org,Jane\n,\n\n ,  \n")
        assert ImportCounts(added=1) == result.counts

    def test_rows_may_have_fewer_cells_than_the_header(self, store: SubscriberStore) -> None:
        """Some tools drop trailing empty cells; the missing ones are empty."""
        run(store, "email,name,region\njane@example.org\n")
        assert ("", "") == (
            store.get("jane@example.org").name,
            store.get("jane@example.org").region,
        )

    def test_a_header_only_file_imports_nothing(self, store: SubscriberStore) -> None:
        """A list with no members yet is not an error."""
        assert ImportCounts() == run(store, "email,name\n").counts


class TestProblems:
    def test_an_invalid_address_is_reported_with_its_line(self, store: SubscriberStore) -> None:
        """Each bad address names the file, the line and the address, and nothing is imported."""
        text = HEADER + "a@example.org,,,,,\nb@example.org,,,,,\njane@,,,,,\n"
        assert [
            "members.csv:4: 'jane@' is not a valid email address: there must be something after the @-sign"
        ] == problems(store, text)

    def test_a_missing_address_is_reported(self, store: SubscriberStore) -> None:
        """A row with data but no address is a problem, not a blank row."""
        assert ["members.csv:2: there is no email address in this row"] == problems(
            store, "email,name\n,Jane Doe\n"
        )

    def test_duplicates_within_the_file_are_reported(self, store: SubscriberStore) -> None:
        """The same address twice (in any case) is reported on the second line, naming the first."""
        text = (
            "email,name\njane@example.org,Jane\nbob@example.org,Bob\nJANE@example.org,Jane again\n"
        )
        assert ["members.csv:4: 'JANE@example.org' is already on line 2"] == problems(store, text)

    def test_no_email_column(self, store: SubscriberStore) -> None:
        """Without an email column nothing can be read, and the message lists the columns found."""
        assert [
            "members.csv:1: the header row has no 'email' column (it has: Name, Address); "
            "the first row must name the columns, one of them 'email'"
        ] == problems(store, "Name,Address\nJane,jane@example.org\n")

    def test_a_column_named_twice(self, store: SubscriberStore) -> None:
        """Two columns that mean the same thing make every row ambiguous."""
        assert ["members.csv:1: the column 'email' appears twice in the header row"] == problems(
            store, "email,E-mail\na@example.org,b@example.org\n"
        )

    @pytest.mark.parametrize("content", [b"", b"\xef\xbb\xbf", b"\n\n", b",,,\n"])
    def test_an_empty_file(self, store: SubscriberStore, content: bytes) -> None:
        """An empty file (or one of blank lines) is reported, not imported as nothing."""
        assert [
            "members.csv:1: the file is empty; expected a header row with an 'email' column"
        ] == problems(store, content)

    def test_a_file_that_is_not_utf8(self, store: SubscriberStore) -> None:
        """A legacy 'CSV' (Windows-1252) export is reported at the first bad line, with what to do."""
        content = "email,name\njane@example.org,Jane\nsian@example.org,Siân\n".encode("cp1252")
        assert [
            "members.csv:3: this line is not UTF-8 text (byte 0xe2); save the spreadsheet as "
            "'CSV UTF-8' and import that file"
        ] == problems(store, content)

    def test_too_many_cells(self, store: SubscriberStore) -> None:
        """An unquoted comma inside a cell shifts every cell after it: reported, not guessed."""
        assert [
            "members.csv:2: this row has 3 cells but the header row has 2; "
            "is there an unquoted comma or semicolon in a cell?"
        ] == problems(store, "email,organisation\njane@example.org,Smith, Jones and Co\n")

    def test_a_stray_quote(self, store: SubscriberStore) -> None:
        """A quote opened and never closed is reported on the row where it opens."""
        assert [
            "members.csv:3: cannot read this row as CSV (unexpected end of data); "
            "check the double quotes in it"
        ] == problems(store, 'email,name\na@example.org,A\nb@example.org,"Bob\nc@example.org,C\n')

    def test_a_value_under_no_header(self, store: SubscriberStore) -> None:
        """A cell in a column without a name would be lost, so it is reported."""
        assert [
            "members.csv:2: column 3 has a value but no name in the header row; name the column or delete it"
        ] == problems(store, "email,name,\njane@example.org,Jane,VIP\n")

    def test_an_unknown_status(self, store: SubscriberStore) -> None:
        """The status column takes only the statuses mailer knows."""
        assert [
            "members.csv:2: 'gone' is not a status; use one of active, pending, unsubscribed, bounced, complained"
        ] == problems(store, "email,status\njane@example.org,gone\n")

    def test_a_bad_date(self, store: SubscriberStore) -> None:
        """Dates are ISO 8601, as export writes them."""
        assert [
            "members.csv:2: '31/12/2024' in created_at is not a date; "
            "write it as 2024-05-01 or 2024-05-01T09:30:00+00:00"
        ] == problems(store, "email,created_at\njane@example.org,31/12/2024\n")

    def test_every_problem_is_reported_at_once_in_line_order(self, store: SubscriberStore) -> None:
        """Editors fix the whole file in one go, so every problem in every row is listed."""
        text = "email,status\nbad@,gone\nok@example.org,active\n,\nok@example.org,\n"
        assert [
            "members.csv:2: 'bad@' is not a valid email address: there must be something after the @-sign",
            "members.csv:2: 'gone' is not a status; use one of active, pending, unsubscribed, bounced, complained",
            "members.csv:5: 'ok@example.org' is already on line 3",
        ] == problems(store, text)

    def test_lines_count_quoted_line_breaks(self, store: SubscriberStore) -> None:
        """A cell with a line break in it (an address in a spreadsheet) does not shift later line numbers."""
        text = 'email,organisation\na@example.org,"Unit 4\nMill Lane"\nb@\n'
        assert [
            "members.csv:4: 'b@' is not a valid email address: there must be something after the @-sign"
        ] == problems(store, text)

    def test_an_encoded_word_in_a_name_is_refused(self, store: SubscriberStore) -> None:
        """'=?...?=' would be decoded in the To header, CR LF included: the row is refused."""
        attack = "=?utf-8?q?x=0D=0ABcc:_victim@example.org?="
        text = f"email,name,organisation,first_name\na@example.org,{attack},=?x,=?y\n"
        assert [
            "members.csv:2: the first_name contains '=?', which mail programs read as an encoded header (RFC 2047); write the first_name as plain text",
            "members.csv:2: the name contains '=?', which mail programs read as an encoded header (RFC 2047); write the name as plain text",
            "members.csv:2: the organisation contains '=?', which mail programs read as an encoded header (RFC 2047); write the organisation as plain text",
        ] == problems(store, text)

    def test_line_breaks_in_a_name_become_spaces(self, store: SubscriberStore) -> None:
        """A name or organisation goes on one line, as it would be shown in a header."""
        text = 'email,name,organisation,region\na@example.org,"Ann\r\nLee","Unit 4\nMill\u2028Lane",North\x85West\n'
        run(store, text)
        member = store.get("a@example.org")
        assert ("Ann Lee", "Unit 4 Mill Lane", "North West") == (
            member.name,
            member.organisation,
            member.region,
        )

    def test_the_error_says_nothing_was_changed(self, store: SubscriberStore) -> None:
        """The summary line tells the editor the list is as it was."""
        with pytest.raises(
            SubscriberDataError, match=r"1 problem in the subscriber data; nothing was changed\."
        ):
            run(store, "email\nbad@\n")

    def test_a_missing_file(self, store: SubscriberStore) -> None:
        """A path that does not exist is reported as such."""
        with pytest.raises(
            SubscriberDataError, match=re.escape("nope.csv:0: cannot read the file: No such file")
        ):
            import_members(store, Path("nope.csv"))


class TestSkipInvalid:
    def test_imports_the_good_rows_and_reports_the_bad(self, store: SubscriberStore) -> None:
        """With skip_invalid, bad rows are counted as skipped and returned as problems."""
        text = "email\ngood@example.org\nbad@\ngood@example.org\nalso-good@example.org\n"
        result = run(store, text, skip_invalid=True)
        assert ImportCounts(added=2, skipped=2) == result.counts
        assert ["members.csv:3", "members.csv:4"] == [f"{p.path}:{p.line}" for p in result.problems]
        assert ["also-good@example.org", "good@example.org"] == [
            m.email for m in store.list_subscribers()
        ]

    def test_cannot_skip_problems_with_the_whole_file(self, store: SubscriberStore) -> None:
        """A file with no email column has no good rows to keep."""
        with pytest.raises(SubscriberDataError, match="no 'email' column"):
            run(store, "name\nJane\n", skip_invalid=True)


class TestUpserting:
    def test_importing_the_same_file_twice_changes_nothing(self, store: SubscriberStore) -> None:
        """Imports are idempotent: the second run finds every row unchanged."""
        text = HEADER + "a@example.org,A,Org,Wales,youth,charity\nb@example.org,B,,,,\n"
        assert ImportCounts(added=2) == run(store, text).counts
        before = store.list_subscribers()
        assert ImportCounts(unchanged=2) == run(store, text).counts
        assert before == store.list_subscribers()

    def test_changed_rows_are_updated_and_logged(self, store: SubscriberStore) -> None:
        """A changed cell updates the member and says what changed in their history."""
        run(store, "email,name,tags\njane@example.org,Jane,youth\nbob@example.org,Bob,\n")
        result = run(
            store,
            "email,name,tags\nJane@Example.org,Jane Doe,youth; in-person\nbob@example.org,Bob,\n",
        )
        assert ImportCounts(updated=1, unchanged=1) == result.counts
        member = store.get("jane@example.org")
        assert ("Jane@example.org", "Jane Doe", ("youth", "in-person")) == (
            member.email,
            member.name,
            member.tags,
        )
        assert "changed email, name, tags" == store.history(member.id)[-1].detail

    def test_columns_missing_from_the_file_are_left_alone(self, store: SubscriberStore) -> None:
        """A file with fewer columns updates only those it has."""
        run(store, "email,name,region,member_type\njane@example.org,Jane,Wales,charity\n")
        assert (
            ImportCounts(updated=1)
            == run(store, "email,region\njane@example.org,Scotland\n").counts
        )
        member = store.get("jane@example.org")
        assert ("Jane", "Scotland", {"member_type": "charity"}) == (
            member.name,
            member.region,
            member.attributes,
        )

    def test_an_empty_cell_clears_the_value(self, store: SubscriberStore) -> None:
        """An emptied cell in a column the file has clears it, attributes included."""
        run(store, "email,name,member_type,size\njane@example.org,Jane,charity,small\n")
        run(store, "email,name,member_type\njane@example.org,,\n")
        member = store.get("jane@example.org")
        assert ("", {"size": "small"}) == (member.name, member.attributes)

    def test_a_dry_run_counts_and_changes_nothing(self, store: SubscriberStore) -> None:
        """--dry-run reports what would change and leaves the list as it was."""
        run(store, "email,name\njane@example.org,Jane\n")
        result = run(
            store, "email,name\njane@example.org,Jane Doe\nnew@example.org,New\n", dry_run=True
        )
        assert ImportCounts(added=1, updated=1) == result.counts
        assert ["jane@example.org"] == [m.email for m in store.list_subscribers()]
        assert "Jane" == store.get("jane@example.org").name


class TestStickiness:
    @pytest.mark.parametrize("status", ["pending", "unsubscribed", "bounced", "complained"])
    def test_a_reimport_never_revives_a_sticky_status(
        self, store: SubscriberStore, status: str
    ) -> None:
        """An import may update a sticky member's details but never their status, even if the file says active."""
        run(store, "email,name\njane@example.org,Jane\n")
        store.set_status(
            "jane@example.org", SubscriberStatus(status), reason="theirs", source="webhook"
        )
        result = run(store, "email,name,status\njane@example.org,Jane Doe,active\n")
        assert ImportCounts(updated=1) == result.counts
        member = store.get("jane@example.org")
        assert (SubscriberStatus(status), "theirs", "Jane Doe") == (
            member.status,
            member.status_reason,
            member.name,
        )

    def test_a_sticky_member_with_nothing_else_changed_is_unchanged(
        self, store: SubscriberStore
    ) -> None:
        """The file saying 'active' for an unsubscribed member is not a change at all."""
        run(store, "email\njane@example.org\n")
        store.unsubscribe("jane@example.org", reason="asked", source="web")
        assert (
            ImportCounts(unchanged=1)
            == run(store, "email,status\njane@example.org,active\n").counts
        )

    def test_an_import_can_move_an_active_member_to_a_sticky_status(
        self, store: SubscriberStore
    ) -> None:
        """Marking someone unsubscribed in the spreadsheet is safe, so it is applied and logged."""
        run(store, "email\njane@example.org\n")
        result = run(
            store, "email,status,status_reason\njane@example.org,Unsubscribed,phoned the office\n"
        )
        assert ImportCounts(updated=1) == result.counts
        member = store.get("jane@example.org")
        assert (SubscriberStatus.unsubscribed, "phoned the office") == (
            member.status,
            member.status_reason,
        )
        assert SubscriberStatus.unsubscribed == store.history(member.id)[-1].status_to

    def test_new_members_take_the_status_and_dates_in_the_file(
        self, store: SubscriberStore
    ) -> None:
        """An exported unsubscribe stays an unsubscribe when imported into a new store."""
        run(
            store,
            "email,status,status_changed_at,status_reason,created_at\n"
            "jane@example.org,bounced,2024-03-01T10:00:00+00:00,mailbox full,2023-01-15\n",
        )
        member = store.get("jane@example.org")
        assert (SubscriberStatus.bounced, "mailbox full") == (member.status, member.status_reason)
        assert ("2024-03-01T10:00:00+00:00", "2023-01-15T00:00:00+00:00") == (
            member.status_changed_at.isoformat(),
            member.created_at.isoformat(),
        )

    def test_a_forgotten_address_is_counted_as_suppressed_and_not_added(
        self, store: SubscriberStore
    ) -> None:
        """After forget, the person's row in an old spreadsheet does not bring them back."""
        run(store, "email,name\njane@example.org,Jane\nbob@example.org,Bob\n")
        store.forget("jane@example.org", reason="erasure request", source="cli")
        result = run(store, "email,name\nJANE@example.org,Jane\nbob@example.org,Bob\n")
        assert ImportCounts(unchanged=1, suppressed=1) == result.counts
        assert ["bob@example.org"] == [m.email for m in store.list_subscribers()]


class TestRoundTrip:
    def test_export_then_import_changes_nothing(self, store: SubscriberStore) -> None:
        """An export read back into the same store finds every member unchanged."""
        run(
            store,
            HEADER + 'a@example.org,Ann,Org,Wales,"youth; in-person",charity\nb@example.org,,,,,\n',
        )
        store.unsubscribe("b@example.org", reason="asked, politely", source="web")
        exported = io.StringIO()
        assert 2 == write_members(store.list_subscribers(), exported)
        assert ImportCounts(unchanged=2) == run(store, exported.getvalue()).counts

    def test_export_rebuilds_the_list_in_a_new_store(
        self, store: SubscriberStore, tmp_path: Path
    ) -> None:
        """Exported from one database and imported into another, the list (statuses too) is the same."""
        text = 'email,name,region,tags,size\na@example.org,"Ann ""Nan"" Jones",Wales,"youth; in-person",small\n'
        run(store, text + "b@example.org,Bob,Scotland,,\nc@example.org,Cy,,,\n")
        store.set_status(
            "b@example.org", SubscriberStatus.complained, reason="spam report", source="webhook"
        )
        first = io.StringIO()
        write_members(store.list_subscribers(), first)
        with open_store(f"sqlite:///{tmp_path / 'copy.db'}") as copy:
            assert ImportCounts(added=3) == run(copy, first.getvalue(), skip_invalid=False).counts
            second = io.StringIO()
            write_members(copy.list_subscribers(), second)
            assert SubscriberStatus.complained == copy.get("b@example.org").status
        assert first.getvalue() == second.getvalue()

    def test_export_header(self, store: SubscriberStore) -> None:
        """The export has the known columns first, then every attribute, alphabetically."""
        store.add(
            [MemberRecord("a@example.org", attributes={"size": "small", "member_type": "charity"})],
            source="t",
        )
        exported = io.StringIO()
        write_members(store.list_subscribers(), exported)
        assert (
            "email,name,organisation,region,tags,status,status_changed_at,status_reason,created_at,"
            "member_type,size"
        ) == exported.getvalue().splitlines()[0]
