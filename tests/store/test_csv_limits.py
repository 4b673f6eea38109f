"""What import refuses before it costs anything (issue 14): NULs, on both databases alike, and
lines longer than MAX_LINE_BYTES, found in bounded memory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mailer.errors import SubscriberDataError
from mailer.store import SubscriberStore
from mailer.store.csvio import MAX_LINE_BYTES, import_members, parse_members

pytestmark = pytest.mark.usefixtures("in_tmp")


def refused(store: SubscriberStore, content: bytes, **options: bool) -> list[str]:
    path = Path("members.csv")
    path.write_bytes(content)
    with pytest.raises(SubscriberDataError) as caught:
        import_members(store, path, **options)
    assert [] == store.list_subscribers()
    return [str(problem) for problem in caught.value.problems]


class TestNul:
    @pytest.mark.parametrize("dry_run", [True, False])
    def test_a_nul_in_a_cell_is_refused_with_its_line_on_both_databases(
        self, store: SubscriberStore, dry_run: bool
    ) -> None:
        """Before: --dry-run passed, then the import crashed on PostgreSQL and worked on SQLite."""
        content = b"email,name,member_type\na@example.org,Ann,x\nb@example.org,B\x00b,y\n"
        assert [
            "members.csv:3: column 'name' holds a NUL character (byte 0x00), which the database "
            "cannot keep; delete it (a file saved as UTF-16 is full of them: save it as 'CSV UTF-8')"
        ] == refused(store, content, dry_run=dry_run)

    def test_in_an_attribute_or_the_address_too(self, store: SubscriberStore) -> None:
        content = b"email,member_type\na@example.org,x\x00\nb\x00@example.org,y\n"
        found = refused(store, content)
        assert ["members.csv:2: column 'member_type'", "members.csv:3: column 'email'"] == [
            problem.split(" holds")[0] for problem in found
        ]

    def test_skip_invalid_skips_only_that_row(self, store: SubscriberStore) -> None:
        path = Path("members.csv")
        path.write_bytes(b"email,name\na@example.org,A\x00\nb@example.org,B\n")
        result = import_members(store, path, skip_invalid=True)
        assert (1, 1) == (result.counts.added, result.counts.skipped)
        assert ["b@example.org"] == [m.email for m in store.list_subscribers()]


class TestLongLines:
    def test_a_line_over_the_limit_is_refused_with_its_number(self, store: SubscriberStore) -> None:
        long = b"b@example.org," + b"x" * MAX_LINE_BYTES + b"\n"
        assert [
            f"members.csv:3: this line is longer than {MAX_LINE_BYTES:,} bytes, far more than "
            "any member's row; is this the right file?"
        ] == refused(store, b"email,name\r\na@example.org,A\r\n" + long)

    def test_a_line_at_the_limit_is_read(self, store: SubscriberStore) -> None:
        name = "x" * (MAX_LINE_BYTES - len("a@example.org,"))
        parsed = parse_members(f"email,name\na@example.org,{name}\n".encode(), "m.csv")
        assert ([], name) == (parsed.problems, parsed.records[0].name)

    def test_line_breaks_of_every_kind_end_lines(self) -> None:
        for brk in (b"\n", b"\r\n", b"\r"):
            line = b"a@example.org," + b"x" * (MAX_LINE_BYTES - 20)
            parse_members(b"email,name" + brk + line + brk, "m.csv")  # no FileProblems

    @pytest.mark.parametrize(
        "reader",
        [
            "from mailer.store.csvio import read_members as read",
            # the path `mailer subscribers import` takes, whatever the format
            "from mailer.store.importing import check_list as read",
        ],
    )
    def test_a_huge_one_line_file_is_refused_in_bounded_memory(
        self, tmp_path: Path, reader: str
    ) -> None:
        """Before: a 1 GB file of one line peaked at 7.4 GB before it was refused."""
        big = tmp_path / "big.csv"
        with big.open("wb") as out:
            out.write(b"email,name\na@example.org,")
            chunk = b"y" * (1 << 20)
            for _ in range(200):  # 200 MiB on one line
                out.write(chunk)
        script = (
            "import sys\n"
            "from pathlib import Path\n"
            "from mailer.store.csvio import FileProblems\n"
            f"{reader}\n"
            "try:\n"
            f"    read(Path({str(big)!r}))\n"
            "except FileProblems as e:\n"
            "    print(e)\n"
            # VmHWM: this process's peak (ru_maxrss would keep the forking parent's across exec).
            "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')))\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True
        ).stdout.splitlines()
        assert "big.csv:2: this line is longer than" in out[0]
        peak_mib = int(out[1]) / 1024
        assert peak_mib < 150, f"peak {peak_mib:.0f} MiB reading a 200 MiB line"
