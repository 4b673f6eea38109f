"""How fast `mailer subscribers import` is, and how much memory it takes, on SQLite and PostgreSQL.

Two lists of 100,000 members: a members CSV, and a Mailchimp audience export (a
ZIP of subscribed, unsubscribed and cleaned members' CSV files, with all of
Mailchimp's columns). ``--formats`` chooses (``csv,mailchimp`` by default).

Generates a members CSV of 100,000 rows (members at a few thousand organisations,
spread over the UK's nations and regions, with tags and two attribute columns),
then, for each database, in a fresh process of its own (so that peak memory is
that import's alone):

* first import: into an empty store (every row added);
* second import: the same file again (every row unchanged);

each timed end to end (reading and checking the CSV, then writing it in one
transaction), as the command does it, in wall-clock seconds and in CPU seconds
of the mailer process (PostgreSQL's own work runs in its server process). Peak memory is the process's maximum
resident set size, beside what the process held before the import started.

Each database is measured ``--repeat`` times (3 by default) and the median run
is reported, with every run's rate beside it: on a shared machine one run is noise.

Run it as ``.venv/bin/python benchmarks/import.py [--rows N] [--repeat N] [--formats csv,mailchimp]
[--postgres-url URL]``. SQLite writes to a temporary file; PostgreSQL to a scratch
schema on the server at 127.0.0.1:5432 (database ``test``), dropped afterwards.
The figures are printed and written to benchmarks/results/import.json (a format
not measured keeps the figures it had there).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg
from sqlalchemy import make_url

REGIONS = [
    "North East", "North West", "Yorkshire and the Humber", "East Midlands", "West Midlands",
    "East of England", "London", "South East", "South West", "Wales", "Scotland", "Northern Ireland",
]  # fmt: skip
TAGS = [
    "youth-loneliness",
    "intergenerational",
    "in-person",
    "rural",
    "digital-inclusion",
    "carers",
]
FIRST = [
    "Alex",
    "Sam",
    "Priya",
    "Gwen",
    "Tomasz",
    "Aisha",
    "Rhys",
    "Siobhán",
    "Li",
    "Chidi",
    "Morag",
]
LAST = [
    "Morgan",
    "Shah",
    "Rees",
    "Nowak",
    "Okafor",
    "Campbell",
    "O'Neill",
    "Evans",
    "Chen",
    "Fraser",
]
KINDS = ["Community Trust", "Lunch Club", "Youth Project", "Befrienders", "Men's Shed", "Forum"]
MEMBER_TYPES = ["charity", "community group", "social enterprise", "local authority", "partner"]
SIZES = ["small", "medium", "large"]
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def generate(path: Path, rows: int, seed: int = 2026) -> None:
    """A members CSV: about 30 people per organisation, one domain per organisation."""
    rng = random.Random(seed)
    organisations = max(1, rows // 30)
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["email", "name", "organisation", "region", "tags", "member_type", "size"])
        for n in range(rows):
            org = rng.randrange(organisations)
            org_rng = random.Random(org)  # an organisation's region and type do not vary
            first, last = rng.choice(FIRST), rng.choice(LAST)
            writer.writerow(
                [
                    f"{first.lower()[:3]}.{last.lower().replace(chr(39), '')}.{n}@org{org}.example.org",
                    f"{first} {last}",
                    f"{org_rng.choice(LAST)} {org_rng.choice(KINDS)} {org}",
                    org_rng.choice(REGIONS),
                    "; ".join(rng.sample(TAGS, k=rng.choice([0, 1, 1, 2, 3]))),
                    org_rng.choice(MEMBER_TYPES),
                    org_rng.choice(SIZES),
                ]
            )


MAILCHIMP_HEADER = [
    "Email Address", "First Name", "Last Name", "Organisation", "Region", "Interests",
    "MEMBER_RATING", "OPTIN_TIME", "OPTIN_IP", "CONFIRM_TIME", "CONFIRM_IP", "LATITUDE",
    "LONGITUDE", "GMTOFF", "DSTOFF", "TIMEZONE", "CC", "REGION", "LAST_CHANGED", "LEID",
    "EUID", "NOTES", "TAGS",
]  # fmt: skip
UNSUB_COLUMNS = [
    "UNSUB_TIME", "UNSUB_CAMPAIGN_TITLE", "UNSUB_CAMPAIGN_ID", "UNSUB_REASON", "UNSUB_REASON_OTHER"
]  # fmt: skip
CLEAN_COLUMNS = ["CLEAN_TIME", "CLEAN_CAMPAIGN_TITLE", "CLEAN_CAMPAIGN_ID"]
INTERESTS = ["Youth loneliness", "Intergenerational connection", "Returning to in-person services"]


def generate_mailchimp(path: Path, rows: int, seed: int = 2026) -> dict[str, int]:
    """A Mailchimp audience export ZIP: 90% subscribed, 7% unsubscribed, 3% cleaned."""
    rng = random.Random(seed)
    organisations = max(1, rows // 30)
    files = {"subscribed": io.StringIO(), "unsubscribed": io.StringIO(), "cleaned": io.StringIO()}
    writers = {name: csv.writer(out, quoting=csv.QUOTE_ALL) for name, out in files.items()}
    writers["subscribed"].writerow(MAILCHIMP_HEADER)
    writers["unsubscribed"].writerow(MAILCHIMP_HEADER + UNSUB_COLUMNS)
    writers["cleaned"].writerow(MAILCHIMP_HEADER + CLEAN_COLUMNS)
    counts = dict.fromkeys(files, 0)
    for n in range(rows):
        org = rng.randrange(organisations)
        org_rng = random.Random(org)
        first, last = rng.choice(FIRST), rng.choice(LAST)
        day = f"20{rng.randrange(18, 25)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
        ip = f"198.51.100.{rng.randrange(1, 255)}"
        tags = ",".join(f'"{tag}"' for tag in rng.sample(TAGS, k=rng.choice([0, 1, 1, 2])))
        row = [
            f"{first.lower()[:3]}.{last.lower().replace(chr(39), '')}.{n}@org{org}.example.org",
            first,
            last,
            f"{org_rng.choice(LAST)} {org_rng.choice(KINDS)} {org}",
            org_rng.choice(REGIONS),
            ", ".join(rng.sample(INTERESTS, k=rng.choice([0, 1, 2]))),
            str(rng.randrange(1, 6)),
            f"{day} 10:00:00",
            ip,
            f"{day} 10:02:00",
            ip,
            "53.8",
            "-1.5",
            "0",
            "1",
            "Europe/London",
            "GB",
            "ENG",
            "2024-11-01 08:00:00",
            str(100000000 + n),
            f"{n:010x}",
            "",
            tags,
        ]
        draw = rng.random()
        kind = "subscribed" if draw < 0.9 else "unsubscribed" if draw < 0.97 else "cleaned"
        if kind == "unsubscribed":
            row += ["2024-06-01 12:00:00", "Summer news", "a1b2c3", "I no longer want these", ""]
        elif kind == "cleaned":
            row += ["2024-06-01 12:00:00", "Summer news", "a1b2c3"]
        writers[kind].writerow(row)
        counts[kind] += 1
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, out in files.items():
            archive.writestr(f"{name}_members_export_bench.csv", out.getvalue())
    return counts


def peak_rss_mb() -> float:
    """This process's peak resident set size so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one(url: str, csv_path: Path) -> dict[str, Any]:
    """Two imports of the file into the store at ``url``, timed; runs in its own process.

    A ZIP is imported as the command imports Mailchimp's export (with the
    Interests groups mapped to tags); a CSV as a members CSV.
    """
    from mailer.store import open_store
    from mailer.store.columnmap import ColumnMap
    from mailer.store.csvio import import_members
    from mailer.store.importing import import_list

    def timed(store: Any) -> tuple[Any, float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        if csv_path.suffix == ".zip":
            columns = ColumnMap.of({"Interests": "tags"}, {})
            counts = import_list(store, csv_path, columns=columns).counts
        else:
            counts = import_members(store, csv_path).counts
        return counts, time.perf_counter() - wall, time.process_time() - cpu

    with open_store(url) as store:
        before = peak_rss_mb()
        first, first_seconds, first_cpu = timed(store)
        second, second_seconds, second_cpu = timed(store)
    rows = first.total
    return {
        "rows": rows,
        "first_import": {
            "seconds": round(first_seconds, 2),
            "rows_per_second": round(rows / first_seconds),
            "mailer_cpu_seconds": round(first_cpu, 2),
            "counts": dataclasses.asdict(first),
        },
        "second_import": {
            "seconds": round(second_seconds, 2),
            "rows_per_second": round(rows / second_seconds),
            "mailer_cpu_seconds": round(second_cpu, 2),
            "counts": dataclasses.asdict(second),
        },
        "rss_before_import_mb": round(before, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def in_child(url: str, csv_path: Path) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", url, str(csv_path)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def postgres(server: str, csv_path: Path) -> dict[str, Any]:
    schema = f"mailer_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_libpq(server), autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    try:
        url = make_url(server).update_query_dict({"options": f"-csearch_path={schema}"})
        return in_child(url.render_as_string(hide_password=False), csv_path)
    finally:
        with psycopg.connect(_libpq(server), autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


def measure(path: Path, folder: Path, repeat: int, postgres_url: str) -> dict[str, dict[str, Any]]:
    """The median of ``repeat`` runs per database of two imports of ``path``."""
    runs: dict[str, list[dict[str, Any]]] = {"sqlite": [], "postgresql": []}
    for n in range(repeat):
        runs["sqlite"].append(in_child(f"sqlite:///{folder / f'{path.stem}{n}.db'}", path))
        runs["postgresql"].append(postgres(postgres_url, path))
    # The median run: the machine may be shared, so single runs are noisy.
    results = {
        name: sorted(found, key=lambda run: run["first_import"]["seconds"])[len(found) // 2]
        for name, found in runs.items()
    }
    for name, found in runs.items():
        results[name]["first_import_rows_per_second_of_each_run"] = [
            run["first_import"]["rows_per_second"] for run in found
        ]
    for name, result in results.items():
        first, second = result["first_import"], result["second_import"]
        print(
            f"{name:>10}: first import {first['rows_per_second']:>7,} rows/s ({first['seconds']} s), "
            f"second {second['rows_per_second']:>7,} rows/s ({second['seconds']} s), "
            f"peak memory {result['peak_rss_mb']} MB (before: {result['rss_before_import_mb']} MB)"
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="members in each list")
    parser.add_argument(
        "--postgres-url", default=os.environ.get("MAILER_TEST_POSTGRES_URL", POSTGRES_URL)
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per database; the median is kept"
    )
    parser.add_argument(
        "--formats", default="csv,mailchimp", help="which lists: csv, mailchimp or both"
    )
    parser.add_argument("--child", nargs=2, metavar=("URL", "CSV"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one(args.child[0], Path(args.child[1]))))
        return

    formats = set(args.formats.split(","))
    out = ROOT / "benchmarks" / "results" / "import.json"
    report: dict[str, Any] = json.loads(out.read_text(encoding="utf-8")) if out.exists() else {}
    machine = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }
    with tempfile.TemporaryDirectory() as folder:
        if "csv" in formats:
            csv_path = Path(folder) / "members.csv"
            generate(csv_path, args.rows)
            size_mb = csv_path.stat().st_size / 1e6
            print(f"members CSV: {args.rows:,} rows, {size_mb:.1f} MB")
            results = measure(csv_path, Path(folder), args.repeat, args.postgres_url)
            report.update(
                {
                    "rows": args.rows,
                    "runs_per_database": args.repeat,
                    "csv_megabytes": round(size_mb, 1),
                    "machine": machine,
                    **results,
                }
            )
        if "mailchimp" in formats:
            zip_path = Path(folder) / "mailchimp-export.zip"
            files = generate_mailchimp(zip_path, args.rows)
            size_mb = zip_path.stat().st_size / 1e6
            print(f"Mailchimp ZIP: {args.rows:,} members {files}, {size_mb:.1f} MB zipped")
            results = measure(zip_path, Path(folder), args.repeat, args.postgres_url)
            report["mailchimp_zip"] = {
                "rows": args.rows,
                "members_per_file": files,
                "zip_megabytes": round(size_mb, 1),
                "runs_per_database": args.repeat,
                "machine": machine,
                **results,
            }
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
