"""The systemd unit: `systemd-analyze verify` and its security exposure (CI installs systemd)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

UNIT = ROOT / "systemd" / "nstd.service"
analyze = shutil.which("systemd-analyze")
pytestmark = pytest.mark.skipif(analyze is None, reason="systemd-analyze is not installed")


def test_unit_verifies(tmp_path):
    # The unit names the install location /opt/nstd/venv; point it at this environment's nstd.
    nstd = Path(sys.executable).parent / "nstd"
    unit = tmp_path / "nstd.service"
    unit.write_text(UNIT.read_text().replace("/opt/nstd/venv/bin/nstd", str(nstd)))
    r = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True)
    problems = [line for line in (r.stdout + r.stderr).splitlines() if "nstd.service" in line]
    assert r.returncode == 0 and problems == [], r.stdout + r.stderr


def test_exposure_is_at_most_ok_and_matches_the_readme():
    r = subprocess.run([analyze, "security", "--offline=true", str(UNIT)], capture_output=True, text=True)
    level = float(re.search(r"Overall exposure level for nstd.service: ([\d.]+)", r.stdout).group(1))
    assert level <= 3.0
    assert f"exposure {level}" in (ROOT / "README.md").read_text()
