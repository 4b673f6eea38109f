"""How much compiling once per variant saves over rendering every email from scratch.

For an issue (by default the first sample in issues/) and 10,000 synthetic members
spread over its segments, this measures:

* compile: Jinja + MJML + cutting into chunks, once per variant;
* personalise: filling one recipient's values into the compiled variant;
* naive: Jinja + MJML for every recipient (timed on a sample of recipients,
  then scaled up to all of them, since doing 10,000 would take minutes).

Run it as ``.venv/bin/python benchmarks/render.py [ISSUE] [--recipients N]``.
The figures are printed and written to benchmarks/results/render.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mailer.config import Newsletter, load_newsletter
from mailer.issues.check import load_issue
from mailer.issues.model import Issue
from mailer.render import (
    CompiledVariant,
    compile_variant,
    variant_content,
    variant_key,
)

FIRST = ["Alex", "Sam", "Priya", "Gwen", "Tomasz", "Aisha", "Rhys", "Siobhan", "Li", "Chidi"]
LAST = ["Morgan", "Shah", "Rees", "Nowak", "Okafor", "Campbell", "O'Neill", "Evans", "Chen"]
ORGS = ["Community Trust", "Lunch Club", "Youth Project", "Befrienders", "Men's Shed", "& Co"]


def synthetic_members(issue: Issue, count: int, seed: int = 2025) -> list[dict[str, str]]:
    """Members with names, organisations, links, and 0 to 2 of the issue's segments each."""
    rng = random.Random(seed)
    segments = sorted(issue.segments_named())
    members = []
    for n in range(count):
        chosen = rng.sample(segments, k=rng.choice([0, 0, 1, 1, 1, 2])) if segments else []
        members.append(
            {
                "name": f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                "organisation": f"{rng.choice(LAST)} {rng.choice(ORGS)}",
                "region": rng.choice(["Wales", "Scotland", "Yorkshire", "London"]),
                "unsubscribe_url": f"https://news.example.org/unsubscribe/{n:08d}-{rng.getrandbits(64):016x}",
                "preferences_url": f"https://news.example.org/preferences/{n:08d}-{rng.getrandbits(64):016x}",
                "segments": ",".join(chosen),
            }
        )
    return members


def compile_all(
    issue: Issue, newsletter: Newsletter, keys: list[frozenset[str]]
) -> tuple[dict[frozenset[str], CompiledVariant], list[float]]:
    variants: dict[frozenset[str], CompiledVariant] = {}
    timings: list[float] = []
    for key in keys:
        start = time.perf_counter()
        variants[key] = compile_variant(variant_content(issue, newsletter, key), issue, newsletter)
        timings.append(time.perf_counter() - start)
    return variants, timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_issue = sorted((ROOT / "issues").glob("*.yaml"))[0]
    parser.add_argument("issue", nargs="?", type=Path, default=default_issue)
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--naive-sample", type=int, default=200)
    args = parser.parse_args()

    newsletter = load_newsletter(ROOT / "mailer.toml")
    issue = load_issue(args.issue, newsletter)
    members = synthetic_members(issue, args.recipients)
    member_keys = [variant_key(issue, filter(None, m["segments"].split(","))) for m in members]
    keys = list(dict.fromkeys(member_keys))

    variants, compile_times = compile_all(issue, newsletter, keys)

    start = time.perf_counter()
    for member, key in zip(members, member_keys, strict=True):
        variants[key].personalise(member)
    personalise_total = time.perf_counter() - start

    # The naive way: every recipient's email rendered and compiled from scratch.
    sample = members[: args.naive_sample]
    start = time.perf_counter()
    for member, key in zip(sample, member_keys[: len(sample)], strict=True):
        compile_variant(variant_content(issue, newsletter, key), issue, newsletter).personalise(
            member
        )
    naive_per_recipient = (time.perf_counter() - start) / len(sample)

    mean, worst = statistics.mean(compile_times), max(compile_times)
    compiled_total = sum(compile_times) + personalise_total
    naive_total = naive_per_recipient * len(members)
    results = {
        "issue": args.issue.name,
        "recipients": len(members),
        "variants": len(keys),
        "recipients_per_variant": {
            variants[key].name: count for key, count in Counter(member_keys).most_common()
        },
        "compile_seconds_per_variant": {"mean": mean, "max": worst},
        "compile_seconds_total": sum(compile_times),
        "personalise_microseconds_per_recipient": personalise_total / len(members) * 1e6,
        "personalise_seconds_total": personalise_total,
        "compiled_seconds_total": compiled_total,
        "naive_seconds_per_recipient": naive_per_recipient,
        "naive_seconds_total_estimated": naive_total,
        "naive_sample": len(sample),
        "speedup": naive_total / compiled_total,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    out = ROOT / "benchmarks" / "results" / "render.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")

    lines = [
        ("compile, per variant", f"{mean * 1000:8.1f} ms (max {worst * 1000:.1f} ms)"),
        ("personalise, per recipient", f"{personalise_total / len(members) * 1e6:8.1f} µs"),
        ("compile once + personalise", f"{compiled_total:8.2f} s for all recipients"),
        ("naive, per recipient", f"{naive_per_recipient * 1000:8.1f} ms (sample of {len(sample)})"),
        ("naive, all recipients", f"{naive_total:8.2f} s (estimated)"),
        ("speed-up", f"{naive_total / compiled_total:8.0f}x"),
    ]
    print(f"issue {args.issue.name}: {len(members):,} recipients, {len(keys)} variants")
    for label, figure in lines:
        print(f"{label + ':':29}{figure}")
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
