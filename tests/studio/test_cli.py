"""`mailer preview --serve`: the studio as the command starts it, on this machine unless told."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from helpers.studio import WINTER
from typer.testing import CliRunner

from mailer.cli import app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def mailer(project: Path, *args: str) -> subprocess.Popen[str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("MAILER_")}
    return subprocess.Popen(
        [sys.executable, "-c", "from mailer.cli import main; main()", *args],
        cwd=project,
        env={**environment, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> str:
    """What the process wrote to stderr, once it has ended (killed if it has not)."""
    if process.poll() is None:
        process.kill()
        process.wait(10)
    assert process.stderr is not None
    with process.stderr:
        return process.stderr.read()


def wait_until_up(url: str, process: subprocess.Popen[str]) -> httpx.Response:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, finish(process)
        try:
            return httpx.get(url, timeout=5)
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer")


class TestListening:
    def test_another_interface_needs_allow_remote(
        self, project: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """--host 0.0.0.0 alone is refused, saying why and what to add; nothing listens."""
        monkeypatch.chdir(project)

        result = CliRunner().invoke(app, ["preview", "--serve", "--host", "0.0.0.0"])

        assert 2 == result.exit_code
        assert (
            "the studio can send mail, so it listens only on this machine (127.0.0.1); to "
            "listen on 0.0.0.0, where anyone who reaches it can send tests to the editors, "
            "add --allow-remote"
        ) in " ".join(result.stderr.replace("│", " ").split())

    def test_it_serves_the_issue_asked_for_and_stops_on_ctrl_c(self, project: Path) -> None:
        """It answers on 127.0.0.1 with the issue given, and Ctrl+C stops it with a page open."""
        port = free_port()
        process = mailer(
            project, "preview", "--serve", f"issues/{WINTER}.yaml", "--port", str(port)
        )
        try:
            first = wait_until_up(f"http://127.0.0.1:{port}/", process)
            with httpx.stream("GET", f"http://127.0.0.1:{port}/events", timeout=10) as events:
                next(events.iter_lines())  # a page's live connection is open
                process.send_signal(signal.SIGINT)
                status = process.wait(10)
        finally:
            stderr = finish(process)

        assert (303, f"/issues/{WINTER}") == (first.status_code, first.headers["location"])
        assert 130 == status, stderr  # stopped by Ctrl+C, as a shell expects
        assert f"The studio for Connected Communities is at http://127.0.0.1:{port}/" in stderr

    def test_allow_remote_listens_and_warns(self, project: Path) -> None:
        """With --allow-remote it listens where asked and warns that anyone there can send tests."""
        port = free_port()
        process = mailer(
            project,
            "preview",
            "--serve",
            "--host",
            "0.0.0.0",
            "--allow-remote",
            "--port",
            str(port),
        )
        try:
            answer = wait_until_up(f"http://127.0.0.1:{port}/", process)
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(10)
            stderr = " ".join(finish(process).split())

        assert 200 == answer.status_code
        assert (
            "Listening on 0.0.0.0: anyone who can reach this machine can open the studio and "
            "send tests to the editors, over plain HTTP."
        ) in stderr


class TestArguments:
    def test_an_issue_is_needed_without_serve(
        self, project: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """`mailer preview` alone asks for the issue file, or --serve."""
        monkeypatch.chdir(project)

        result = CliRunner().invoke(app, ["preview"])

        assert 2 == result.exit_code
        assert "give the issue file to preview, or --serve to run the studio" in " ".join(
            result.stderr.replace("│", " ").split()
        )

    def test_the_issue_must_be_in_the_issues_folder(
        self, project: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The studio shows the issues folder; a file elsewhere is refused, saying so."""
        monkeypatch.chdir(project)
        (project / "elsewhere.yaml").write_text("subject: x\n", encoding="utf-8")

        result = CliRunner().invoke(app, ["preview", "--serve", "elsewhere.yaml"])

        assert 2 == result.exit_code
        assert "elsewhere.yaml is not in the issues folder" in " ".join(
            result.stderr.replace("│", " ").split()
        )
