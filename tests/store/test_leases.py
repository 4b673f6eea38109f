"""Whether a send's owner still runs is asked of a lock that ends with it, never of a PID,
a host name or a clock: the cases of issue 21 where the old answer was wrong.

Each test runs real processes: a zombie (killed, never waited for), a restart as PID 1
in a new PID namespace (``unshare -p -f``), two "machines" with one host name (two PID
namespaces), and a batch that waits twenty minutes (the clock moved by time-machine).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from helpers.owners import holder_command, project_env, wait_for_sessions_to_end

from mailer.store import SubscriberStore
from mailer.store.ledger import Ledger, new_owner

ISSUE = "2026-12-03-winter-connections"
UNSHARE = shutil.which("unshare")
needs_unshare = pytest.mark.skipif(
    UNSHARE is None or sys.platform != "linux", reason="needs util-linux's unshare (and root)"
)


def started(
    command: list[str], *, prefix: tuple[str, ...] | list[str] = ()
) -> subprocess.Popen[str]:
    """A process, once it says it holds the lease."""
    process = subprocess.Popen(
        [*prefix, *command], stdout=subprocess.PIPE, text=True, env=project_env()
    )
    assert process.stdout is not None
    assert "held" == process.stdout.readline().strip()
    return process


def end(process: subprocess.Popen[str]) -> None:
    """Kill -9, reap, and close its pipe."""
    process.kill()
    process.wait()
    if process.stdout is not None:
        process.stdout.close()


def url_of(store: SubscriberStore) -> str:
    return store.engine.url.render_as_string(hide_password=False)


def test_a_zombie_owner_holds_nothing(store: SubscriberStore) -> None:
    """A sender killed and never waited for by its parent (a zombie) does not keep the send."""
    sessions = f"mailer-zombie-{uuid.uuid4().hex[:12]}"  # libpq's application_name for them
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time; "
            "child = subprocess.Popen(sys.argv[1:], stdout=sys.stdout); time.sleep(120)",
            *holder_command(url_of(store), ISSUE, hold=120),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**project_env(), "PGAPPNAME": sessions},
    )
    try:
        assert parent.stdout is not None
        assert "held" == parent.stdout.readline().strip()
        [child] = [
            int(p)
            for p in Path(f"/proc/{parent.pid}/task/{parent.pid}/children").read_text().split()
        ]
        subprocess.run(["kill", "-9", str(child)], check=True)
        deadline = time.monotonic() + 10
        while "State:\tZ" not in Path(f"/proc/{child}/status").read_text():
            assert time.monotonic() < deadline, "the killed sender did not become a zombie"
            time.sleep(0.01)
        if store.engine.dialect.name == "postgresql":  # the server notices the closed
            wait_for_sessions_to_end(url_of(store), sessions)  # connection a moment later
        Ledger(store.engine).acquire(ISSUE, "outbox", new_owner())  # not refused
    finally:
        end(parent)


@needs_unshare
def test_a_restart_as_pid_1_in_a_new_pid_namespace_takes_the_send_over(
    store: SubscriberStore,
) -> None:
    """A container restarted with the same command is PID 1 again, like the sender it replaces:
    the new one still sees that the old one is gone, and takes over."""
    assert UNSHARE is not None
    in_container = [UNSHARE, "--pid", "--fork", "--kill-child"]
    first = started(holder_command(url_of(store), ISSUE, hold=120), prefix=in_container)
    owner = Ledger(store.engine).holder(ISSUE)
    assert owner is not None and ":1:" in owner.owner  # PID 1 in its namespace
    end(first)
    second = subprocess.run(
        [*in_container, *holder_command(url_of(store), ISSUE)],
        capture_output=True,
        text=True,
        env=project_env(),
        timeout=60,
    )
    assert (0, "held") == (second.returncode, second.stdout.strip()), second.stderr


@needs_unshare
def test_two_machines_with_one_host_name_never_steal_from_each_other(
    store: SubscriberStore,
) -> None:
    """Machine A sends (as PID 2 of its namespace: a shell started it); machine B, same host
    name, has no PID 2: it must still see that A runs, and take over only once A is gone."""
    assert UNSHARE is not None
    machine = [UNSHARE, "--pid", "--fork", "--kill-child"]
    shell = ["sh", "-c", '"$@"; exit $?', "sh"]
    a = started(holder_command(url_of(store), ISSUE, hold=120), prefix=[*machine, *shell])
    try:
        b = subprocess.run(
            [*machine, *holder_command(url_of(store), ISSUE)],
            capture_output=True,
            text=True,
            env=project_env(),
            timeout=60,
        )
        assert 3 == b.returncode, b.stdout + b.stderr
        assert "being sent by another process" in b.stdout
    finally:
        end(a)
    again = subprocess.run(
        [*machine, *holder_command(url_of(store), ISSUE)],
        capture_output=True,
        text=True,
        env=project_env(),
        timeout=60,
    )
    assert (0, "held") == (again.returncode, again.stdout.strip()), again.stderr
