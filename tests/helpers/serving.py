"""`mailer serve` as an operator starts it: in a subprocess, with its output kept."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from helpers.project import ROOT

MAILER = str(Path(sys.executable).with_name("mailer"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Served:
    """`mailer serve` in a subprocess, with its stderr."""

    def __init__(self, tmp_path: Path, *args: str, **env: str) -> None:
        self.port = free_port()
        self.log = tmp_path / f"serve-{self.port}.log"
        environment = {
            **{k: v for k, v in os.environ.items() if not k.startswith("MAILER_")},
            "MAILER_CONFIG_PATH": str(ROOT / "mailer.toml"),
            "MAILER_DATABASE_URL": f"sqlite:///{tmp_path / 'mailer.db'}",
            "MAILER_OUTBOX_DIR": str(tmp_path / "outbox"),
            **env,
        }
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [MAILER, "serve", "--port", str(self.port), *args],
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    @property
    def output(self) -> str:
        return self.log.read_text()

    def wait_until_serving(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1)
                return
            except httpx.TransportError:
                if self.process.poll() is not None:
                    raise AssertionError(f"mailer serve exited: {self.output}") from None
                time.sleep(0.1)
        raise AssertionError(f"mailer serve did not start: {self.output}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
