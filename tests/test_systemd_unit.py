"""The systemd unit: `systemd-analyze verify` and its security exposure (CI installs systemd)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

UNITS = [ROOT / "systemd" / name for name in ("nstd.service", "nstd-web.service", "nstd-worker.service")]
analyze = shutil.which("systemd-analyze")
pytestmark = pytest.mark.skipif(analyze is None, reason="systemd-analyze is not installed")


@pytest.mark.parametrize("source", UNITS, ids=lambda p: p.name)
def test_unit_verifies(tmp_path, source):
    # The unit names the install location /opt/nstd/venv; point it at this environment's nstd.
    nstd = Path(sys.executable).parent / "nstd"
    unit = tmp_path / source.name
    unit.write_text(source.read_text().replace("/opt/nstd/venv/bin/nstd", str(nstd)))
    r = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True)
    problems = [line for line in (r.stdout + r.stderr).splitlines() if source.name in line]
    assert r.returncode == 0 and problems == [], r.stdout + r.stderr


@pytest.mark.parametrize("source", UNITS, ids=lambda p: p.name)
def test_exposure_is_at_most_ok_and_matches_the_docs(source):
    r = subprocess.run([analyze, "security", "--offline=true", str(source)], capture_output=True, text=True)
    level = float(re.search(rf"Overall exposure level for {source.name}: ([\d.]+)", r.stdout).group(1))
    assert level <= 3.0
    assert f"`{source.name}`: exposure {level}" in (ROOT / "docs" / "operating" / "service.md").read_text()


def test_the_network_drop_in_gives_the_daemon_ip_and_its_exposure_matches_the_docs(tmp_path):
    unit = tmp_path / "nstd.service"
    unit.write_text((ROOT / "systemd" / "nstd.service").read_text())
    (tmp_path / "nstd.service.d").mkdir()
    drop_in = (ROOT / "systemd" / "nstd-network.conf").read_text()
    (tmp_path / "nstd.service.d" / "network.conf").write_text(drop_in)
    r = subprocess.run([analyze, "security", "--offline=true", str(unit)], capture_output=True, text=True)
    assert "✗ PrivateNetwork=" in r.stdout  # the drop-in really applies
    level = float(re.search(r"Overall exposure level for nstd.service: ([\d.]+)", r.stdout).group(1))
    assert level <= 3.0
    guide = (ROOT / "docs" / "operating" / "service.md").read_text()
    assert f"`nstd.service` + `nstd-network.conf`: exposure {level}" in guide
