"""Owners of the send ledger's lease and of the scheduler's slot claims, left by dead processes.

A process that dies (``kill -9``, a crash) leaves its rows naming it as the owner,
and holds no lock any more: each helper here makes a real process take the lease or
the claim, then end without giving it back, as a killed one would.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence

import psycopg

from helpers.databases import libpq_url
from helpers.project import ROOT

_DIE = """
import json, os, sys
from mailer.store.database import make_engine
args = json.loads(sys.argv[1])
engine = make_engine(args["url"])
from mailer.store.ledger import Ledger, new_owner
owner = new_owner()
if args["kind"] == "send":
    ledger = Ledger(engine)
    ledger.acquire(args["issue"], args["transport"], owner, outbox_dir=args["outbox_dir"])
    if args["claim"]:
        ledger.claim(args["issue"], args["variant"], args["claim"], owner)
else:
    import datetime as dt
    from mailer.store.slots import SlotStore
    SlotStore(engine).claim(dt.datetime.fromisoformat(args["slot"]), owner, dt.datetime.now(dt.UTC))
print(owner, flush=True)
os._exit(0)  # no release: the rows name this process, whose locks end with it
"""


def _die_holding(**args: object) -> str:
    name = f"mailer-dead-{uuid.uuid4().hex[:12]}"  # libpq's application_name for its sessions
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "PGAPPNAME": name,
    }
    done = subprocess.run(
        [sys.executable, "-c", _DIE, json.dumps(args)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    url = str(args["url"])
    if url.startswith("postgresql"):
        wait_for_sessions_to_end(url, name)
    return done.stdout.strip()


def wait_for_sessions_to_end(url: str, name: str, timeout: float = 30) -> None:
    """Wait until PostgreSQL has ended the dead process's sessions (and so its advisory
    locks): the server notices a client gone a moment after its process exits, longer on
    a loaded machine, and a test that looks at once would see a lock still held."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(libpq_url(url), autocommit=True) as connection:
        while time.monotonic() < deadline:
            row = connection.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (name,)
            ).fetchone()
            if row is not None and row[0] == 0:
                return
            time.sleep(0.02)
    raise AssertionError(f"PostgreSQL kept the sessions of a dead process for {timeout} s")


def dead_sender(
    database_url: str,
    issue: str,
    *,
    transport: str = "outbox",
    claim: Sequence[int] = (),
    variant: str = "general",
    outbox_dir: str = "",
) -> str:
    """The owner of a send of ``issue`` that died holding the lease, ``claim``'s members in flight."""
    return _die_holding(
        kind="send",
        url=database_url,
        issue=issue,
        transport=transport,
        claim=list(claim),
        variant=variant,
        outbox_dir=outbox_dir,
    )


def dead_slot_owner(database_url: str, slot_at: dt.datetime) -> str:
    """The owner of a scheduler that claimed the slot and died dealing with it."""
    return _die_holding(kind="slot", url=database_url, slot=slot_at.isoformat())


HOLD = """
import json, sys, time
from mailer.store.database import make_engine
from mailer.store.ledger import Ledger, new_owner
from mailer.errors import SendRefused
args = json.loads(sys.argv[1])
ledger = Ledger(make_engine(args["url"]))
try:
    ledger.acquire(args["issue"], "outbox", new_owner())
except SendRefused as refused:
    print("refused:", refused, flush=True)
    sys.exit(3)
print("held", flush=True)
time.sleep(args["hold"])
"""


def holder_command(database_url: str, issue: str, *, hold: float = 0) -> list[str]:
    """A Python process that takes the send's lease and holds it ``hold`` seconds
    (prints "held", or "refused: ..." and exits 3)."""
    return [
        sys.executable,
        "-c",
        HOLD,
        json.dumps({"url": database_url, "issue": issue, "hold": hold}),
    ]


def project_env() -> dict[str, str]:
    """The environment a helper process needs to import mailer from this checkout."""
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
