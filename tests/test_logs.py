"""mailer's log lines: one line per event, with a UTC time, as text or JSON (MAILER_LOG_FORMAT)."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.members import add_members
from helpers.project import ROOT, SAMPLE_ISSUE

from mailer.logs import configure_logging
from mailer.store import open_store

MAILER = str(Path(sys.executable).with_name("mailer"))

TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (DEBUG|INFO|WARNING|ERROR) [\w.]+: ")
JSON_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


class Stderr:
    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys

    def getvalue(self) -> str:
        return self.capsys.readouterr().err


@pytest.fixture
def stderr(capsys: pytest.CaptureFixture[str]) -> Iterator[Stderr]:
    """What configure_logging writes, kept; the root logger put back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    mailer_level = logging.getLogger("mailer").level
    yield Stderr(capsys)
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("mailer").setLevel(mailer_level)


def log_an_event_with_line_breaks_and_a_traceback() -> None:
    log = logging.getLogger("mailer.test")
    log.info("first line\nsecond line\r\nthird")
    try:
        raise ValueError("broken\nacross lines")
    except ValueError:
        log.exception("it failed")


def test_text_every_event_is_one_line_with_a_utc_time(stderr: Stderr) -> None:
    configure_logging("INFO", "text")
    log_an_event_with_line_breaks_and_a_traceback()
    lines = stderr.getvalue().splitlines()
    assert 2 == len(lines), lines
    assert all(TEXT_LINE.match(line) for line in lines), lines
    assert lines[0].endswith("first line\\nsecond line\\nthird")
    assert "Traceback" in lines[1] and "ValueError: broken\\nacross lines" in lines[1]


def test_json_every_event_is_one_object_with_a_utc_time(stderr: Stderr) -> None:
    configure_logging("INFO", "json")
    log_an_event_with_line_breaks_and_a_traceback()
    entries = [json.loads(line) for line in stderr.getvalue().splitlines()]
    assert 2 == len(entries)
    assert all(JSON_TIME.match(entry["time"]) for entry in entries)
    assert [("INFO", "mailer.test"), ("ERROR", "mailer.test")] == [
        (entry["level"], entry["logger"]) for entry in entries
    ]
    assert "first line\nsecond line\r\nthird" == entries[0]["message"]
    assert "ValueError: broken" in entries[1]["exception"]


def test_the_level_setting_and_other_libraries_kept_to_warnings(stderr: Stderr) -> None:
    configure_logging("WARNING", "text")
    logging.getLogger("mailer.test").info("not shown")
    logging.getLogger("mailer.test").warning("shown")
    logging.getLogger("apscheduler.executors.default").info('Job "check" executed')
    assert ["shown"] == [line.rpartition(": ")[2] for line in stderr.getvalue().splitlines()]


def test_mailer_send_logs_each_batch_in_the_format_asked_for(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'mailer.db'}"
    with open_store(database) as store:
        add_members(store, 5)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MAILER_", "SENDGRID_"))},
        "MAILER_CONFIG_PATH": str(ROOT / "mailer.toml"),
        "MAILER_DATABASE_URL": database,
        "MAILER_OUTBOX_DIR": str(tmp_path / "outbox"),
        "MAILER_LOG_FORMAT": "json",
    }
    done = subprocess.run(
        [MAILER, "send", str(SAMPLE_ISSUE), "--yes", "--batch-size", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert 0 == done.returncode, done.stderr
    entries = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    handed = [e for e in entries if e["message"].startswith("batch handed over")]
    assert len(handed) >= 3, done.stderr
    assert all(JSON_TIME.match(e["time"]) and e["logger"] == "mailer.sending.run" for e in handed)
