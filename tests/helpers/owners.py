"""Owners of the send ledger's lease and of the scheduler's slot claims."""

from __future__ import annotations

import socket
import subprocess
import sys


def dead_owner() -> str:
    """An owner on this host whose process has exited, as after a kill -9.

    Owner ids are HOST:PID:NONCE, as :func:`mailer.store.ledger.new_owner` makes them.
    """
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return f"{socket.gethostname()}:{finished.stdout.strip()}:0"
