"""A send killed between handing a message to SMTP and hearing back: the delivery is
unknown, keeps the Message-ID the relay received, and `--resolve-unknown=list` shows it.

Real processes (`mailer send` killed with SIGKILL) against a real SMTP server
(aiosmtpd) that takes the message and then stalls its answer.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from doubles.smtp import SmtpServer
from helpers.members import add_members
from helpers.project import BASE_URL, ROOT, SAMPLE_ISSUE
from helpers.sending import SECRET

from mailer.store import open_store
from mailer.store.ledger import Ledger

ISSUE = "2026-12-03-winter-connections"
MAILER = [str(Path(sys.executable).with_name("mailer"))]


@pytest.fixture
def env(tmp_path: Path, smtp_server: SmtpServer) -> dict[str, str]:
    database = f"sqlite:///{tmp_path / 'mailer.db'}"
    with open_store(database) as store:
        add_members(store, 3)
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MAILER_", "SENDGRID_"))},
        "MAILER_CONFIG_PATH": str(ROOT / "mailer.toml"),
        "MAILER_DATABASE_URL": database,
        "MAILER_TRANSPORT": "smtp",
        "MAILER_SMTP_URL": smtp_server.url(),
        "MAILER_SEND_TIMEOUT": "60",
        "MAILER_SECRET_KEY": SECRET,
        "MAILER_BASE_URL": BASE_URL,
    }


def mailer(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MAILER, "send", str(SAMPLE_ISSUE), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_killed_send_leaves_the_message_id_on_the_unknown_delivery(
    env: dict[str, str], smtp_server: SmtpServer, tmp_path: Path
) -> None:
    smtp_server.stall_replies = 60
    process = subprocess.Popen(
        [*MAILER, "send", str(SAMPLE_ISSUE), "--yes", "--batch-size", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not smtp_server.messages and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)  # the relay has the message; mailer never hears so
    process.wait()
    [handed] = smtp_server.messages
    smtp_server.stall_replies = 0

    finished = mailer(env, "--yes")  # settles the dead run's row as unknown, sends the rest
    assert 3 == finished.returncode, finished.stdout + finished.stderr  # incomplete: 1 unknown

    listed = mailer(env, "--resolve-unknown=list", "--json")
    assert 0 == listed.returncode, listed.stderr
    [row] = json.loads(listed.stdout)
    assert (handed.rcpt_tos[0], handed.message["Message-ID"]) == (row["email"], row["message_id"])
    assert "the SMTP relay's log" in row["reason"]
    table = mailer(env, "--resolve-unknown=list")
    assert f"{handed.rcpt_tos[0]}  {handed.message['Message-ID']}  " in table.stdout

    # Listing changed nothing: the operator still decides.
    with open_store(env["MAILER_DATABASE_URL"]) as store:
        assert 1 == len(Ledger(store.engine).unknown(ISSUE))


def test_the_list_says_when_nothing_is_unknown(env: dict[str, str]) -> None:
    listed = mailer(env, "--resolve-unknown=list")
    assert (0, f"No deliveries of {ISSUE} are unknown.") == (
        listed.returncode,
        listed.stdout.strip(),
    )
