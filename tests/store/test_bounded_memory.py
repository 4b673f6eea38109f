"""Import, export and `list --segment` stream the list: their peak memory does not grow with it.

Each command runs as the real CLI in a process of its own, at 10,000 and at 40,000
members, on SQLite and PostgreSQL; its peak resident memory (VmHWM, read by the
process itself as it exits) may grow by at most :data:`MARGIN_MB` between the two.
Before the commands streamed, 30,000 more members cost them 40-60 MB more (1.4-2 GB at a million). The
guard depends on memory only, never on the machine's speed.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

from helpers.project import ROOT

from mailer.store import MemberRecord, open_store
from mailer.store.upsert import insert_new, new_row

SMALL, LARGE = 10_000, 40_000
MARGIN_MB = 20
REGIONS = ["Wales", "Scotland", "London", "North West", "South East", "Northern Ireland"]
TAGS = [("youth",), ("older", "in-person"), (), ("intergenerational",)]

# Runs the CLI as `mailer` does, then writes this process's peak memory (kB) to a file.
RUN = """
import atexit, sys
report = sys.argv[1]
def peak():
    status = open("/proc/self/status").read().split("\\n")
    hwm = next(line.split()[1] for line in status if line.startswith("VmHWM"))
    open(report, "w").write(hwm)
atexit.register(peak)
sys.argv = ["mailer", *sys.argv[2:]]
from mailer.cli import main
main()
"""


def member(n: int) -> MemberRecord:
    return MemberRecord(
        email=f"member{n:06d}@charity{n % 997}.example.org",
        name=f"Member {n}",
        organisation=f"Charity {n % 997}",
        region=REGIONS[n % len(REGIONS)],
        tags=TAGS[n % len(TAGS)],
        attributes={"member_type": "charity" if n % 3 else "council"},
    )


def fill(database_url: str, start: int, stop: int) -> None:
    """Members ``start`` to ``stop``, written straight with the store's bulk insert (not an import)."""
    when = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with open_store(database_url) as store, store.engine.begin() as connection:
        rows = [new_row(member(n), when, "test") for n in range(start, stop)]
        insert_new(connection, rows, when, "test")


def peak_mb(tmp_path: Path, database_url: str, *args: str) -> float:
    """The peak memory, in MB, of `mailer ARGS` run on its own."""
    report = tmp_path / "peak"
    env = {
        **os.environ,
        "MAILER_DATABASE_URL": database_url,
        "MAILER_CONFIG_PATH": str(ROOT / "mailer.toml"),
    }
    subprocess.run(
        [sys.executable, "-c", RUN, str(report), *args],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        check=True,
    )
    return int(report.read_text()) / 1024


def members_csv(path: Path, count: int) -> Path:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "name", "organisation", "region", "tags", "member_type"])
        for n in range(count):
            m = member(n)
            writer.writerow(
                [m.email, m.name, m.organisation, m.region, ";".join(m.tags or ()), "charity"]
            )
    return path


def test_import_does_not_grow_with_the_list(tmp_path: Path, database_url: str) -> None:
    """Importing 40,000 members peaks no higher than importing 10,000 (within the margin)."""
    small = members_csv(tmp_path / "small.csv", SMALL)
    large = members_csv(tmp_path / "large.csv", LARGE)
    first = peak_mb(tmp_path, database_url, "subscribers", "import", str(small))
    # The large file goes into the same store: 10,000 updates, 30,000 new members.
    second = peak_mb(tmp_path, database_url, "subscribers", "import", str(large))
    print(f"import: {first:.0f} MB at {SMALL:,}, {second:.0f} MB at {LARGE:,}")
    assert second - first < MARGIN_MB, f"{first:.0f} MB at {SMALL:,}, {second:.0f} MB at {LARGE:,}"


def test_export_and_list_do_not_grow_with_the_list(tmp_path: Path, database_url: str) -> None:
    """Exporting and listing a segment of 40,000 members peak no higher than of 10,000."""
    fill(database_url, 0, SMALL)
    commands = [
        ("subscribers", "export", str(tmp_path / "export.csv")),
        ("subscribers", "list", "--segment", "wales"),
    ]
    small = [peak_mb(tmp_path, database_url, *command) for command in commands]
    fill(database_url, SMALL, LARGE)
    large = [peak_mb(tmp_path, database_url, *command) for command in commands]
    with (tmp_path / "export.csv").open(encoding="utf-8-sig") as exported:
        assert LARGE + 1 == sum(1 for _ in exported)  # the header, then every member
    for command, first, second in zip(commands, small, large, strict=True):
        print(f"{' '.join(command[:2])}: {first:.0f} MB at {SMALL:,}, {second:.0f} MB at {LARGE:,}")
        assert second - first < MARGIN_MB, (
            f"{' '.join(command[:2])}: {first:.0f} MB at {SMALL:,}, {second:.0f} MB at {LARGE:,}"
        )
