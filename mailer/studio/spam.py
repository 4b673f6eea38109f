"""The spam score, from SpamAssassin when it is installed: local rules only, never the network.

``spamassassin -L -t`` scores one message with its local tests (no DNS blocklists,
no Razor or Pyzor) and writes a report whose table says which rules matched. It
takes a second or two to start, so scores are kept per message content. When the
program is not there, the studio says how to install it instead.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass

__all__ = ["INSTALL", "SpamRule", "SpamScore", "score"]

INSTALL = (
    "SpamAssassin is not installed, so there is no spam score. Install it to get one: "
    "`sudo apt-get install spamassassin` (Debian, Ubuntu) or `brew install spamassassin` "
    "(macOS); the studio then runs it locally, without the network."
)
TIMEOUT = 60.0
_SUMMARY = re.compile(r"Content analysis details:\s+\((-?[\d.]+) points?, (-?[\d.]+) required\)")
_RULE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s+([A-Z0-9_]+)\s+(.*)$")


@dataclass(frozen=True)
class SpamRule:
    points: float
    name: str
    description: str


@dataclass(frozen=True)
class SpamScore:
    """SpamAssassin's verdict, or why there is none (``problem``)."""

    points: float | None = None
    required: float | None = None
    rules: tuple[SpamRule, ...] = ()
    problem: str | None = None

    @property
    def spammy(self) -> bool:
        return (
            self.points is not None and self.required is not None and self.points >= self.required
        )


_known: dict[str, SpamScore] = {}
_lock = threading.Lock()


def score(message: bytes, program: str = "spamassassin") -> SpamScore:
    """SpamAssassin's score of a whole message (headers and body), from its local rules."""
    digest = hashlib.sha256(message).hexdigest()
    with _lock:
        if digest in _known:
            return _known[digest]
    found = _run(message, program)
    if found.problem is None:
        with _lock:
            _known[digest] = found
    return found


def _run(message: bytes, program: str) -> SpamScore:
    path = shutil.which(program)
    if path is None:
        return SpamScore(problem=INSTALL)
    with tempfile.TemporaryDirectory(prefix="mailer-spam-") as home:
        try:
            done = subprocess.run(
                [path, "-L", "-t", "-p", f"{home}/user_prefs"],
                input=message,
                capture_output=True,
                timeout=TIMEOUT,
                check=False,
                env={"HOME": home, "PATH": "/usr/bin:/bin"},
            )
        except subprocess.TimeoutExpired:
            return SpamScore(problem=f"SpamAssassin took more than {TIMEOUT:.0f} s and was stopped")
    return parse_report(done.stdout.decode("utf-8", "replace"))


def parse_report(report: str) -> SpamScore:
    """The points, the threshold and the matched rules from the report ``-t`` appends."""
    summary = _SUMMARY.search(report)
    if summary is None:
        return SpamScore(
            problem="SpamAssassin gave no score: run `spamassassin -L -t` on a message to see why"
        )
    table = report[summary.end() :].split("\n---- ", 1)[-1].split("\n", 1)[-1]
    rules = []
    for line in table.splitlines():
        match = _RULE.match(line)
        if match:
            rules.append(SpamRule(float(match[1]), match[2], match[3].strip()))
        elif line.startswith(" " * 5) and rules:  # a description carried on the next line
            last = rules[-1]
            rules[-1] = SpamRule(last.points, last.name, f"{last.description} {line.strip()}")
        elif not line.strip() and rules:
            break
    return SpamScore(float(summary[1]), float(summary[2]), tuple(rules))
