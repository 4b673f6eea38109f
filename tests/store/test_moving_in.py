"""Moving in: importing a list from Mailchimp, listmonk or a mapped spreadsheet, on SQLite and PostgreSQL.

The sample files in tests/data/ are written from each tool's documentation,
with fictional people on reserved domains.
"""

from __future__ import annotations

import datetime as dt
import shutil
import zipfile
from pathlib import Path

import pytest
from helpers.project import ROOT

from mailer.audience.segments import segments_of
from mailer.config import Newsletter
from mailer.errors import SubscriberDataError
from mailer.store import ImportCounts, MemberRecord, SubscriberStatus, SubscriberStore
from mailer.store.columnmap import ColumnMap
from mailer.store.csvio import read_table
from mailer.store.importing import ImportFormat, ImportReport, import_list, recognise
from mailer.store.listmonk import parse_time
from mailer.store.models import EventKind

DATA = ROOT / "tests" / "data"
ZIP = DATA / "mailchimp-audience-export.zip"
MAILCHIMP = DATA / "mailchimp"
SUBSCRIBED = MAILCHIMP / "subscribed_members_export_3f2a9c1d7e.csv"
UNSUBSCRIBED = MAILCHIMP / "unsubscribed_members_export_3f2a9c1d7e.csv"
CLEANED = MAILCHIMP / "cleaned_members_export_3f2a9c1d7e.csv"
ACTIVE_IN_ZIP = {
    "gwen.parry@llandudno-cafe.example.org",
    "tomasz@leeds-lunch-club.example.org",
    "aisha@glasgow-befrienders.example.net",
    "morag@inverness-shed.example.org",
}
LEFT_IN_ZIP = {
    "rhys@swansea-youth.example.org": SubscriberStatus.unsubscribed,
    "priya@bradford-carers.example.org": SubscriberStatus.unsubscribed,
    "chidi@old-youth-trust.example.net": SubscriberStatus.bounced,
}

pytestmark = pytest.mark.usefixtures("in_tmp")


def utc(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=dt.UTC)  # type: ignore[misc]


def project_map(newsletter: Newsletter) -> ColumnMap:
    """The project's mailer.toml map: Mailchimp's "Interests" groups as tags."""
    assert newsletter.imports is not None
    return ColumnMap.of(newsletter.imports.columns, newsletter.imports.values)


def copy(source: Path, name: str | None = None) -> Path:
    return Path(shutil.copy(source, name or source.name))


def zipped(name: str, files: dict[str, str]) -> Path:
    path = Path(name)
    with zipfile.ZipFile(path, "w") as archive:
        for member, text in files.items():
            archive.writestr(member, text)
    return path


def statuses(store: SubscriberStore) -> dict[str, SubscriberStatus]:
    return {member.email: member.status for member in store.list_subscribers()}


class TestMailchimpZip:
    def test_the_sample_zip_holds_the_sample_files(self) -> None:
        """The committed ZIP is exactly the three CSV files beside it, as Mailchimp hands them over."""
        with zipfile.ZipFile(ZIP) as archive:
            inside = {name: archive.read(name) for name in archive.namelist()}
        assert {path.name: path.read_bytes() for path in MAILCHIMP.glob("*.csv")} == inside

    def test_subscribed_are_active_and_the_others_keep_their_status(
        self, store: SubscriberStore, newsletter: Newsletter
    ) -> None:
        """Subscribed → active; unsubscribed → unsubscribed; cleaned → bounced."""
        import_list(store, copy(ZIP), columns=project_map(newsletter))
        assert {**dict.fromkeys(ACTIVE_IN_ZIP, SubscriberStatus.active), **LEFT_IN_ZIP} == (
            statuses(store)
        )

    def test_names_tags_and_segments(self, store: SubscriberStore, newsletter: Newsletter) -> None:
        """First and last name make the name; TAGS and the group column become tags segments match."""
        import_list(store, copy(ZIP), columns=project_map(newsletter))
        gwen = store.get("gwen.parry@llandudno-cafe.example.org")
        assert ("Gwen Parry", "Gwen", "Gwen") == (
            gwen.name,
            gwen.first_name,
            gwen.attributes["first_name"],
        )
        assert ("Llandudno Community Café", "Wales") == (gwen.organisation, gwen.region)
        assert ("youth-loneliness", "in-person") == gwen.tags
        assert {"youth", "in-person", "wales"} == segments_of(gwen, newsletter)
        morag = store.get("morag@inverness-shed.example.org")
        assert ("rural", "Sheds, Highlands", "in-person") == morag.tags
        tomasz = store.get("tomasz@leeds-lunch-club.example.org")
        assert {"intergenerational"} == segments_of(tomasz, newsletter)
        assert {"first_name": "Tomasz", "notes": "Met at the Leeds conference"} == dict(
            tomasz.attributes
        )

    def test_mailchimps_tracking_columns_are_left_out(self, store: SubscriberStore) -> None:
        """Rating, location, time zone and Mailchimp's ids are not kept; REGION is not the region."""
        import_list(store, copy(ZIP))
        aisha = store.get("aisha@glasgow-befrienders.example.net")
        assert "Scotland" == aisha.region  # the merge field, not REGION's "SCT"
        assert {"first_name", "interests"} >= set(aisha.attributes)

    def test_opt_in_and_confirmation_are_kept_in_the_history(self, store: SubscriberStore) -> None:
        """The original opt-in and confirmation, with when and from where, come before 'added'."""
        import_list(store, copy(ZIP))
        history = store.history("gwen.parry@llandudno-cafe.example.org")
        assert [
            (
                utc(2021, 3, 14, 10, 22, 31),
                EventKind.prior,
                "opted in on Mailchimp, from 198.51.100.23",
            ),
            (
                utc(2021, 3, 14, 10, 25, 2),
                EventKind.prior,
                "confirmed the subscription on Mailchimp, from 198.51.100.23",
            ),
        ] == [(event.at, event.kind, event.detail) for event in history[:2]]
        assert EventKind.added == history[2].kind
        assert "import mailchimp-audience-export.zip" == history[0].source
        assert (
            utc(2021, 3, 14, 10, 22, 31)
            == store.get("gwen.parry@llandudno-cafe.example.org").created_at
        )

    def test_the_unsubscribe_keeps_its_time_and_reason(self, store: SubscriberStore) -> None:
        """UNSUB_TIME is when the status changed; the reason and campaign are the why."""
        import_list(store, copy(ZIP))
        rhys = store.get("rhys@swansea-youth.example.org")
        assert utc(2024, 2, 10, 18, 4, 55) == rhys.status_changed_at
        assert (
            "unsubscribed on Mailchimp (I no longer want to receive these emails), "
            "from the campaign 'Winter connections'"
        ) == rhys.status_reason
        priya = store.get("priya@bradford-carers.example.org")
        assert "unsubscribed on Mailchimp (Other: Moved to a new role)" == priya.status_reason
        chidi = store.get("chidi@old-youth-trust.example.net")
        assert utc(2024, 5, 20, 7, 12) == chidi.status_changed_at
        assert "cleaned by Mailchimp: the address bounced (campaign 'Spring newsletter')" == (
            chidi.status_reason
        )

    def test_counts_per_status_and_per_file(self, store: SubscriberStore) -> None:
        """The report names the format and counts members by status, file by file."""
        report = import_list(store, copy(ZIP), dry_run=True)
        assert [] == store.list_subscribers()
        assert [ImportFormat.mailchimp] == report.formats
        assert [
            ("mailchimp-audience-export.zip/cleaned_members_export_3f2a9c1d7e.csv", {"bounced": 1}),
            (
                "mailchimp-audience-export.zip/subscribed_members_export_3f2a9c1d7e.csv",
                {"active": 4},
            ),
            (
                "mailchimp-audience-export.zip/unsubscribed_members_export_3f2a9c1d7e.csv",
                {"unsubscribed": 2},
            ),
        ] == [(file.where, file.statuses) for file in report.files]
        assert ImportCounts(added=7) == report.counts

    def test_a_second_import_changes_nothing(self, store: SubscriberStore) -> None:
        """Importing the same export again changes nothing, history included."""
        import_list(store, copy(ZIP))
        before = [(member, store.history(member.id)) for member in store.list_subscribers()]
        report = import_list(store, copy(ZIP))
        assert ImportCounts(unchanged=7) == report.counts
        assert before == [(member, store.history(member.id)) for member in store.list_subscribers()]

    def test_an_export_moves_active_members_out_and_never_back_in(
        self, store: SubscriberStore
    ) -> None:
        """A member active here but unsubscribed on Mailchimp leaves; one who left here stays out."""
        store.add(
            [
                MemberRecord("rhys@swansea-youth.example.org"),
                MemberRecord("gwen.parry@llandudno-cafe.example.org"),
            ],
            source="test",
        )
        store.unsubscribe("gwen.parry@llandudno-cafe.example.org", reason="asked", source="test")
        report = import_list(store, copy(ZIP))
        found = statuses(store)
        assert SubscriberStatus.unsubscribed == found["rhys@swansea-youth.example.org"]
        assert SubscriberStatus.unsubscribed == found["gwen.parry@llandudno-cafe.example.org"]
        subscribed = report.files[1]
        assert {"active": 3, "unsubscribed": 1} == subscribed.statuses

    def test_a_problem_names_the_file_inside_the_zip_and_changes_nothing(
        self, store: SubscriberStore
    ) -> None:
        """A bad row in one file of the ZIP fails the whole import with zip/file:line."""
        text = UNSUBSCRIBED.read_text(encoding="utf-8").replace("rhys@swansea", "rhys@@swansea")
        path = zipped(
            "export.zip",
            {SUBSCRIBED.name: SUBSCRIBED.read_text(encoding="utf-8"), UNSUBSCRIBED.name: text},
        )
        with pytest.raises(SubscriberDataError) as caught:
            import_list(store, path)
        assert [f"export.zip/{UNSUBSCRIBED.name}:2"] == [
            f"{problem.path}:{problem.line}" for problem in caught.value.problems
        ]
        assert [] == store.list_subscribers()

    def test_an_address_in_two_files_keeps_the_status_that_left(
        self, store: SubscriberStore
    ) -> None:
        """The same address subscribed and unsubscribed is a problem; skipped, it stays unsubscribed."""
        unsubscribed = UNSUBSCRIBED.read_text(encoding="utf-8")
        subscribed = SUBSCRIBED.read_text(encoding="utf-8")
        gwen = subscribed.splitlines()[1]
        subscribed += gwen.replace("gwen.parry@llandudno-cafe", "rhys@swansea-youth") + "\r\n"
        files = {UNSUBSCRIBED.name: unsubscribed, SUBSCRIBED.name: subscribed}
        path = zipped("export.zip", files)
        with pytest.raises(SubscriberDataError) as caught:
            import_list(store, path)
        assert [
            f"export.zip/{UNSUBSCRIBED.name}:2: 'rhys@swansea-youth.example.org' is already in "
            f"export.zip/{SUBSCRIBED.name}:6"
        ] == [str(problem) for problem in caught.value.problems]
        report = import_list(store, path, skip_invalid=True)
        assert SubscriberStatus.unsubscribed == store.get("rhys@swansea-youth.example.org").status
        assert 1 == report.counts.skipped

    def test_a_zip_without_csv_files_is_refused(self, store: SubscriberStore) -> None:
        """A ZIP holding no CSV file says so."""
        with pytest.raises(SubscriberDataError, match="holds no CSV file"):
            import_list(store, zipped("export.zip", {"readme.txt": "hello"}))


class TestMailchimpSingleFile:
    @pytest.mark.parametrize(
        ("source", "name", "status"),
        [
            (SUBSCRIBED, None, SubscriberStatus.active),
            (UNSUBSCRIBED, None, SubscriberStatus.unsubscribed),
            (CLEANED, None, SubscriberStatus.bounced),
            (UNSUBSCRIBED, "members.csv", SubscriberStatus.unsubscribed),
            (CLEANED, "subscribed.csv", SubscriberStatus.bounced),
        ],
    )
    def test_a_file_on_its_own_keeps_its_status(
        self, store: SubscriberStore, source: Path, name: str | None, status: SubscriberStatus
    ) -> None:
        """One file of the export, even renamed, gives its members the status its columns say."""
        report = import_list(store, copy(source, name))
        assert [ImportFormat.mailchimp] == report.formats
        assert {status} == set(statuses(store).values())

    def test_an_unsubscribed_file_stripped_of_its_columns_keeps_its_status_by_name(
        self, store: SubscriberStore
    ) -> None:
        """A file named unsubscribed_... is unsubscribed even without UNSUB_ columns."""
        text = SUBSCRIBED.read_text(encoding="utf-8")
        Path("unsubscribed_members_export_1.csv").write_text(text, encoding="utf-8")
        import_list(store, Path("unsubscribed_members_export_1.csv"))
        assert {SubscriberStatus.unsubscribed} == set(statuses(store).values())

    def test_non_subscribed_contacts_never_become_active(self, store: SubscriberStore) -> None:
        """Contacts who never opted in are imported as unsubscribed, with that reason."""
        Path("nonsubscribed_members_export_1.csv").write_text(
            SUBSCRIBED.read_text(encoding="utf-8"), encoding="utf-8"
        )
        import_list(store, Path("nonsubscribed_members_export_1.csv"))
        members = store.list_subscribers()
        assert {SubscriberStatus.unsubscribed} == {member.status for member in members}
        assert {"never subscribed on Mailchimp (a non-subscribed contact)"} == {
            member.status_reason for member in members
        }

    def test_a_file_with_unsubscribe_columns_is_unsubscribed_even_where_they_are_empty(
        self, store: SubscriberStore
    ) -> None:
        """UNSUB_TIME marks Mailchimp's unsubscribed export: every row of it is unsubscribed."""
        Path("subscribed_x.csv").write_text(
            '"Email Address","OPTIN_TIME","UNSUB_TIME"\n'
            '"ann@example.org","2020-01-01 10:00:00",""\n'
            '"bea@example.org","2020-01-01 10:00:00","2023-03-03 03:03:03"\n',
            encoding="utf-8",
        )
        import_list(store, Path("subscribed_x.csv"))
        assert {SubscriberStatus.unsubscribed} == set(statuses(store).values())

    def test_with_a_status_column_a_row_with_an_unsubscribe_time_still_left(
        self, store: SubscriberStore
    ) -> None:
        """Where a Status column says each row's status, an UNSUB_TIME or CLEAN_TIME outranks it."""
        Path("contacts.csv").write_text(
            '"Email Address","Status","UNSUB_TIME","CLEAN_TIME"\n'
            '"ann@example.org","subscribed","",""\n'
            '"bea@example.org","subscribed","2023-03-03 03:03:03",""\n'
            '"cat@example.org","subscribed","","2023-03-03 03:03:03"\n',
            encoding="utf-8",
        )
        import_list(store, Path("contacts.csv"))
        assert {
            "ann@example.org": SubscriberStatus.active,
            "bea@example.org": SubscriberStatus.unsubscribed,
            "cat@example.org": SubscriberStatus.bounced,
        } == statuses(store)

    def test_in_a_file_of_unknown_kind_only_a_row_with_an_opt_in_is_active(
        self, store: SubscriberStore
    ) -> None:
        """Renamed, with no status columns: no OPTIN_TIME or CONFIRM_TIME, no active member."""
        Path("contacts.csv").write_text(
            '"Email Address","OPTIN_TIME","CONFIRM_TIME","LEID"\n'
            '"ann@example.org","2020-01-01 10:00:00","","1"\n'
            '"bea@example.org","","2020-01-01 10:00:00","2"\n'
            '"cat@example.org","","","3"\n',
            encoding="utf-8",
        )
        import_list(store, Path("contacts.csv"))
        assert {
            "ann@example.org": SubscriberStatus.active,
            "bea@example.org": SubscriberStatus.active,
            "cat@example.org": SubscriberStatus.unsubscribed,
        } == statuses(store)
        assert store.get("cat@example.org").status_reason.startswith("no opt-in in Mailchimp's")

    def test_a_status_column_is_read_in_mailchimps_words(self, store: SubscriberStore) -> None:
        """A 'Status' column (some exports have one): only 'subscribed' is active."""
        Path("contacts.csv").write_text(
            '"Email Address","Status","LEID"\n'
            '"ann@example.org","subscribed","1"\n'
            '"bea@example.org","cleaned","2"\n'
            '"cat@example.org","transactional","3"\n'
            '"dot@example.org","pending","4"\n',
            encoding="utf-8",
        )
        import_list(store, Path("contacts.csv"))
        assert {
            "ann@example.org": SubscriberStatus.active,
            "bea@example.org": SubscriberStatus.bounced,
            "cat@example.org": SubscriberStatus.unsubscribed,
            "dot@example.org": SubscriberStatus.pending,
        } == statuses(store)

    def test_a_bad_time_is_a_problem_with_its_line(self, store: SubscriberStore) -> None:
        """A time Mailchimp would not write is reported with file:line and the column."""
        Path("subscribed.csv").write_text(
            '"Email Address","OPTIN_TIME"\n"ann@example.org","yesterday"\n', encoding="utf-8"
        )
        with pytest.raises(SubscriberDataError) as caught:
            import_list(store, Path("subscribed.csv"))
        assert [
            "subscribed.csv:2: 'yesterday' in OPTIN_TIME is not a date and time such as 2024-05-01 09:30:00"
        ] == [str(problem) for problem in caught.value.problems]

    def test_forcing_mailchimp_on_another_file_is_refused(self, store: SubscriberStore) -> None:
        """--from mailchimp on a file without 'Email Address' says what it expected."""
        Path("members.csv").write_text("email,name\nann@example.org,Ann\n", encoding="utf-8")
        with pytest.raises(
            SubscriberDataError, match=r"members\.csv:1: this is not a Mailchimp export"
        ):
            import_list(store, Path("members.csv"), source_format=ImportFormat.mailchimp)


class TestListmonk:
    def test_the_import_layout_merges_the_json_attributes(
        self, store: SubscriberStore, newsletter: Newsletter
    ) -> None:
        """organisation, region and tags inside the JSON fill those fields; the rest are attributes."""
        report = import_list(store, copy(DATA / "listmonk-import.csv"))
        assert [ImportFormat.listmonk] == report.formats
        siobhan = store.get("siobhan@derry-tea-dance.example.org")
        assert ("Siobhán Doherty", "Derry Tea Dance", "Northern Ireland") == (
            siobhan.name,
            siobhan.organisation,
            siobhan.region,
        )
        assert ("intergenerational", "in-person") == siobhan.tags
        assert {"member_type": "charity", "volunteers": "12"} == dict(siobhan.attributes)
        assert {"intergenerational", "in-person", "northern-ireland"} == segments_of(
            siobhan, newsletter
        )
        li = store.get("li@cardiff-lunch-club.example.org")
        assert (("youth-loneliness",), {"youth", "wales"}) == (li.tags, segments_of(li, newsletter))
        assert {SubscriberStatus.active} == set(statuses(store).values())

    def test_attributes_are_merged_into_what_is_stored(self, store: SubscriberStore) -> None:
        """Keys the JSON does not name are left as they were."""
        store.add(
            [MemberRecord("sam@norwich-forum.example.org", attributes={"size": "small"})],
            source="test",
        )
        Path("more.csv").write_text(
            'email,name,attributes\nsam@norwich-forum.example.org,Sam Morgan,"{""member_type"": ""partner""}"\n',
            encoding="utf-8",
        )
        import_list(store, Path("more.csv"))
        sam = store.get("sam@norwich-forum.example.org")
        assert {"size": "small", "member_type": "partner"} == dict(sam.attributes)

    def test_the_export_layout_maps_statuses_and_times(self, store: SubscriberStore) -> None:
        """enabled → active; blocklisted and disabled → unsubscribed; listmonk's times are read."""
        import_list(store, copy(DATA / "listmonk-export.csv"))
        assert {
            "alex@york-befrienders.example.org": SubscriberStatus.active,
            "chris@belfast-shed.example.org": SubscriberStatus.unsubscribed,
            "jo@hull-forum.example.org": SubscriberStatus.unsubscribed,
        } == statuses(store)
        alex = store.get("alex@york-befrienders.example.org")
        assert utc(2023, 4, 1, 9, 30, 0, 123456) == alex.created_at
        chris = store.get("chris@belfast-shed.example.org")
        assert ("blocklisted in listmonk", utc(2024, 3, 3, 15, 45, 10, 500000)) == (
            chris.status_reason,
            chris.status_changed_at,
        )
        jo = store.get("jo@hull-forum.example.org")
        assert ("disabled in listmonk", utc(2021, 9, 9, 9)) == (jo.status_reason, jo.created_at)

    def test_a_blocklisted_subscriber_leaves_and_an_enabled_one_does_not_come_back(
        self, store: SubscriberStore
    ) -> None:
        """An active member blocklisted in listmonk is unsubscribed; an unsubscribed one enabled stays out."""
        store.add(
            [
                MemberRecord("chris@belfast-shed.example.org"),
                MemberRecord("alex@york-befrienders.example.org"),
            ],
            source="test",
        )
        store.unsubscribe("alex@york-befrienders.example.org", reason="asked", source="test")
        import_list(store, copy(DATA / "listmonk-export.csv"))
        assert SubscriberStatus.unsubscribed == store.get("chris@belfast-shed.example.org").status
        assert (
            SubscriberStatus.unsubscribed == store.get("alex@york-befrienders.example.org").status
        )

    def test_bad_json_and_unknown_statuses_are_problems_with_their_lines(
        self, store: SubscriberStore
    ) -> None:
        """Attributes that are not a JSON object, and a status listmonk does not have, are reported."""
        Path("listmonk.csv").write_text(
            "uuid,email,name,attributes,status,created_at,updated_at\n"
            'u1,ann@example.org,Ann,"{""a"": 1",enabled,,\n'
            "u2,bea@example.org,Bea,[1],enabled,,\n"
            "u3,cat@example.org,Cat,{},active,,\n"
            "u4,dot@example.org,Dot,{},enabled,last week,\n",
            encoding="utf-8",
        )
        with pytest.raises(SubscriberDataError) as caught:
            import_list(store, Path("listmonk.csv"))
        assert [
            "listmonk.csv:2: the attributes are not JSON (Expecting ',' delimiter at character 8)",
            'listmonk.csv:3: the attributes are not a JSON object such as {"region": "Wales"}',
            "listmonk.csv:4: 'active' is not a listmonk status; expected enabled, disabled or blocklisted",
            "listmonk.csv:5: 'last week' in created_at is not a date and time such as 2024-05-01 09:30:00.123456 +0000 UTC",
        ] == [str(problem) for problem in caught.value.problems]

    @pytest.mark.parametrize(
        ("cell", "expected"),
        [
            ("2024-05-01 09:30:00 +0000 UTC", utc(2024, 5, 1, 9, 30)),
            ("2024-05-01 10:30:00.123456789 +0100 BST", utc(2024, 5, 1, 9, 30, 0, 123456)),
            ("2024-05-01 09:30:00.5 +0000 +0000", utc(2024, 5, 1, 9, 30, 0, 500000)),
            ("2024-05-01T09:30:00Z", utc(2024, 5, 1, 9, 30)),
        ],
    )
    def test_listmonk_times(self, cell: str, expected: dt.datetime) -> None:
        """Times as Go prints them (listmonk's CSV) or as ISO 8601 (its API)."""
        assert expected == parse_time(cell)


MAP = ColumnMap.of(
    {
        "Work email": "email",
        "Contact": "name",
        "Org": "organisation",
        "Nation": "region",
        "Topics": "tags",
    },
    {
        "region": {"WLS": "Wales", "SCT": "Scotland", "NIR": "Northern Ireland"},
        "tags": {
            "youth": "youth-loneliness",
            "in person": "in-person",
            "Older and younger": "intergenerational",
        },
        "size": {"small": "under 10 staff"},
    },
)


class TestMappedCsv:
    def test_columns_are_renamed_and_values_mapped(
        self, store: SubscriberStore, newsletter: Newsletter
    ) -> None:
        """A spreadsheet with its own headings and codes reads into the fields segments use."""
        report = import_list(store, copy(DATA / "mapped-spreadsheet.csv"), columns=MAP)
        assert ([ImportFormat.csv], ImportCounts(added=3)) == (report.formats, report.counts)
        rhian = store.get("rhian@aberystwyth-walks.example.org")
        assert ("Rhian Morgan", "Aberystwyth Walking Group", "Wales") == (
            rhian.name,
            rhian.organisation,
            rhian.region,
        )
        assert {"size": "under 10 staff"} == dict(rhian.attributes)
        assert {"youth", "wales"} == segments_of(rhian, newsletter)
        euan = store.get("euan@dundee-youth.example.org")
        assert (("youth-loneliness", "in-person"), {"youth", "in-person", "scotland"}) == (
            euan.tags,
            segments_of(euan, newsletter),
        )
        ciara = store.get("ciara@newry-lunch.example.org")
        assert {"intergenerational", "northern-ireland"} == segments_of(ciara, newsletter)

    def test_without_the_map_the_file_is_refused(self, store: SubscriberStore) -> None:
        """The same file without a map has no email column: the map is what makes it readable."""
        with pytest.raises(SubscriberDataError, match="has no 'email' column"):
            import_list(store, copy(DATA / "mapped-spreadsheet.csv"))

    def test_a_mapped_status_column_cannot_revive_anyone(self, store: SubscriberStore) -> None:
        """A column mapped to status moves active members out, never unsubscribed ones in."""
        store.add([MemberRecord("ann@example.org"), MemberRecord("bea@example.org")], source="t")
        store.unsubscribe("bea@example.org", reason="asked", source="t")
        Path("crm.csv").write_text(
            "Mail,State\nann@example.org,gone\nbea@example.org,ok\n", encoding="utf-8"
        )
        columns = ColumnMap.of(
            {"Mail": "email", "State": "status"},
            {"status": {"gone": "unsubscribed", "ok": "active"}},
        )
        # Values are mapped after the row is read, so the status words must be mailer's own.
        with pytest.raises(SubscriberDataError, match="'gone' is not a status"):
            import_list(store, Path("crm.csv"), columns=columns)
        Path("crm.csv").write_text(
            "Mail,State\nann@example.org,unsubscribed\nbea@example.org,active\n", encoding="utf-8"
        )
        import_list(store, Path("crm.csv"), columns=columns)
        assert {
            "ann@example.org": SubscriberStatus.unsubscribed,
            "bea@example.org": SubscriberStatus.unsubscribed,
        } == statuses(store)


class TestWhatTheUserSees:
    @pytest.mark.parametrize(
        ("path", "expected"),
        [
            (SUBSCRIBED, ImportFormat.mailchimp),
            (CLEANED, ImportFormat.mailchimp),
            (DATA / "listmonk-import.csv", ImportFormat.listmonk),
            (DATA / "listmonk-export.csv", ImportFormat.listmonk),
            (DATA / "mapped-spreadsheet.csv", ImportFormat.csv),
            (ROOT / "subscribers" / "members.csv", ImportFormat.csv),
        ],
    )
    def test_each_format_is_recognised_by_its_columns(
        self, path: Path, expected: ImportFormat
    ) -> None:
        """auto tells the formats apart by their header rows."""
        assert expected == recognise(read_table(path.read_bytes(), path.name).header)

    def test_skip_invalid_fails_when_nothing_could_be_imported(
        self, store: SubscriberStore
    ) -> None:
        """--skip-invalid with every row bad is an error, not a quiet success."""
        Path("members.csv").write_text("email,name\njane@,Jane\nbob@,Bob\n", encoding="utf-8")
        with pytest.raises(SubscriberDataError) as caught:
            import_list(store, Path("members.csv"), skip_invalid=True)
        assert ["members.csv:2", "members.csv:3"] == [
            f"{problem.path}:{problem.line}" for problem in caught.value.problems
        ]

    def test_skip_invalid_still_imports_the_good_rows(self, store: SubscriberStore) -> None:
        """One good row is enough for --skip-invalid to import it and report the rest."""
        Path("members.csv").write_text("email\njane@\nbob@example.org\n", encoding="utf-8")
        report: ImportReport = import_list(store, Path("members.csv"), skip_invalid=True)
        assert (ImportCounts(added=1, skipped=1), {"active": 1}) == (
            report.counts,
            report.files[0].statuses,
        )

    def test_a_zip_that_is_not_one_is_refused(self, store: SubscriberStore) -> None:
        """A damaged ZIP is reported, not read as CSV."""
        Path("export.zip").write_bytes(b"PK\x03\x04broken")
        with pytest.raises(SubscriberDataError, match=r"export\.zip:0: cannot read the ZIP file"):
            import_list(store, Path("export.zip"))
