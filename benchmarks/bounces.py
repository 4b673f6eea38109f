"""How fast `mailer bounces fetch` reads the bounce mailbox: a Maildir, and IMAP to Dovecot.

A store (SQLite in a temporary file) with ``--messages`` members (10,000 by
default) who were all sent one issue, and one message in the bounce mailbox per
member, as a large send's bounces would be: 85 in 100 a hard bounce (a Postfix DSN
to the member's VERP address), 10 a delay warning (soft), 5 an out-of-office reply.
Each is timed end to end as the command does it (listing, reading, verifying each
token, applying and recording each batch of 200 in one transaction, then deleting
what was applied), in this process:

* *maildir*: the messages as files in a Maildir;
* *imap*: the same messages in Debian's Dovecot (the tests' servers, started here
  on loopback ports: needs root and ``scripts/services``), read over IMAPS. Putting
  them there (IMAP APPEND) is timed apart and not counted.

Run it as ``.venv/bin/python benchmarks/bounces.py [--messages N] [--only maildir]``.
Figures are printed and written to benchmarks/results/bounces.json, with the
machine's load average: on a shared 2-core machine, other work skews them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import ssl
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from helpers.bounces import ISSUE, SECRET, dsn, envelope, signer

from mailer.config import Settings
from mailer.events.bounces.fetch import fetch_bounces
from mailer.mail import Delivery, DeliveryState
from mailer.store import MemberRecord, SubscriberStatus, open_store
from mailer.store.ledger import Ledger, SendStatus, new_owner

BOUNCES = "bounces@news.example.org"


def make_store(url: str, count: int) -> list[tuple[int, str]]:
    """``count`` members, all sent the issue (their ledger rows ``sent``)."""
    with open_store(url) as store:
        members = store.add(
            [MemberRecord(email=f"member{n:06d}@example.net") for n in range(count)],
            source="benchmark",
        )
        ledger, owner = Ledger(store.engine), new_owner()
        ledger.acquire(ISSUE, "smtp", owner)
        for start in range(0, count, 1000):
            page = members[start : start + 1000]
            claim = ledger.claim(ISSUE, "general", [m.id for m in page], owner)
            ledger.record(
                ISSUE,
                owner,
                [(claim.claimed[m.id], Delivery(m.email, DeliveryState.sent)) for m in page],
            )
        ledger.release(ISSUE, owner, SendStatus.finished)
        return [(m.id, m.email) for m in members]


def make_messages(bounce_address: str, members: list[tuple[int, str]]) -> list[bytes]:
    """One message per member: 85% hard bounces, 10% delays, 5% auto-replies."""
    verp = signer(bounce_address, SECRET)
    messages = []
    for n, (member_id, email) in enumerate(members):
        to = envelope(verp, member_id, email)
        kind = n % 20
        if kind < 17:
            messages.append(dsn(to, email, message_id=f"hard{n}@mx.example.net"))
        elif kind < 19:
            messages.append(
                dsn(
                    to,
                    email,
                    action="delayed",
                    status="4.4.1",
                    message_id=f"soft{n}@mx.example.net",
                )
            )
        else:
            messages.append(
                f"From: {email}\r\nTo: {to}\r\nSubject: Out of Office: Winter connections\r\n"
                f"Auto-Submitted: auto-replied\r\nMessage-ID: <ooo{n}@example.net>\r\n\r\n"
                "Away until Monday.\r\n".encode()
            )
    return messages


def timed_fetch(settings: Settings, expected: int) -> dict[str, Any]:
    with open_store(settings.database_url) as store:
        started = time.perf_counter()
        report = fetch_bounces(settings, store)
        seconds = time.perf_counter() - started
        counts = store.counts()
    assert expected == len(report.messages), (expected, len(report.messages))
    return {
        "messages": len(report.messages),
        "seconds": round(seconds, 3),
        "messages_per_second": round(len(report.messages) / seconds),
        "bounced": counts[SubscriberStatus.bounced],
        "counts": report.to_json()["counts"],
    }


def maildir(count: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'mailer.db'}"
        messages = make_messages(BOUNCES, make_store(url, count))
        box = Path(folder) / "Maildir"
        for sub in ("new", "cur", "tmp"):
            (box / sub).mkdir(parents=True)
        for n, raw in enumerate(messages):
            (box / "new" / f"{1796288530 + n}.M{n}P1.bench").write_bytes(raw)
        settings = Settings(
            database_url=url,
            bounce_address=BOUNCES,
            bounce_mailbox=f"maildir://{box}",
            secret_key=SECRET,
            transport="smtp",
        )
        return timed_fetch(settings, count)


def imap(count: int) -> dict[str, Any]:
    from imap_tools import MailBox
    from servers.mail import PASSWORD, MailServers

    with MailServers() as servers, tempfile.TemporaryDirectory() as folder:
        assert servers.tls is not None
        mailbox = servers.bounce_mailbox()
        url = f"sqlite:///{Path(folder) / 'mailer.db'}"
        messages = make_messages(mailbox.address, make_store(url, count))
        context = ssl.create_default_context(cafile=str(servers.tls.ca))
        started = time.perf_counter()
        with MailBox("127.0.0.1", servers.ports["imaps"], ssl_context=context).login(
            mailbox.address, PASSWORD
        ) as box:
            for raw in messages:
                box.append(raw, "INBOX")
        appended = time.perf_counter() - started
        settings = Settings(
            database_url=url,
            bounce_address=mailbox.address,
            bounce_mailbox=mailbox.url("imaps"),
            bounce_ca_file=servers.tls.ca,
            secret_key=SECRET,
            transport="smtp",
        )
        result = timed_fetch(settings, count)
        return {**result, "append_seconds_not_counted": round(appended, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--only", choices=["maildir", "imap"])
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "bounces.json"
    )
    args = parser.parse_args()

    load_before = os.getloadavg()
    results: dict[str, Any] = {
        "messages": args.messages,
        "mix": {"hard_bounces": 0.85, "delays": 0.10, "auto_replies": 0.05},
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_before": [round(x, 2) for x in load_before],
        },
    }
    for name, run in (("maildir", maildir), ("imap", imap)):
        if args.only in (None, name):
            results[name] = run(args.messages)
            r = results[name]
            print(
                f"{name:>8}: {r['messages']} messages in {r['seconds']} s: "
                f"{r['messages_per_second']} messages/s ({r['bounced']} members bounced)"
            )
    results["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(
        f"load average before {load_before[0]:.2f}, after {results['machine']['load_average_after'][0]:.2f} "
        f"({os.cpu_count()} CPUs)"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"written to {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")


if __name__ == "__main__":
    main()
