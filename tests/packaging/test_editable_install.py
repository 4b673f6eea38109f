"""scripts/install's editable install of mailer prints no BuildBackendWarning.

setuptools warns ("Editable installation. Please be careful with folders in your
working directory ...") whenever it installs an editable package through its import
finder; pyproject.toml's ``package-dir = {"" = "."}`` makes it use one plain .pth line
instead, so `scripts/demo` and `scripts/test` run quietly. The hook pip calls
(``build_editable``) runs here on a copy of the project, with the setuptools that
pip's build isolation installs (``[build-system] requires``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

from helpers.project import ROOT

HOOK = """
import sys, warnings
warnings.simplefilter("always")
from setuptools import build_meta
print(build_meta.build_editable(sys.argv[1]))
"""


def test_the_editable_wheel_is_one_pth_line_and_no_warning(tmp_path: Path) -> None:
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    backend = tmp_path / "backend"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(backend), *requires],
        check=True,
        capture_output=True,
    )
    project = tmp_path / "project"
    project.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, project / name)
    shutil.copytree(
        ROOT / "mailer", project / "mailer", ignore=shutil.ignore_patterns("__pycache__")
    )
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    built = subprocess.run(
        [sys.executable, "-c", HOOK, str(wheels)],
        cwd=project,
        env={"PYTHONPATH": str(backend), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert "BuildBackendWarning" not in built.stderr and "Editable installation" not in built.stderr
    wheel = wheels / built.stdout.strip().splitlines()[-1]
    names = zipfile.ZipFile(wheel).namelist()
    assert not [name for name in names if "finder" in name]  # the import finder that warns
    [pth] = [name for name in names if name.endswith(".pth")]
    assert str(project) == zipfile.ZipFile(wheel).read(pth).decode().strip()
