"""A flood (issue 32 item 4): bench/flood.py against a real daemon at a fifth of its size, so that
the bench cannot rot and the suite checks what it counts: every photo queued once, none painted or
queued twice (also across a restart), none failed. The figures belong to the bench's full run."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow


def test_a_thousand_photos_at_once_are_each_queued_once_and_survive_a_restart():
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "flood.py"), "--photos", "1000", "--done", "2000",
                           "--paint", "3", "--repeats", "1", "--ceiling", "600"],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    last = done.stdout.strip().splitlines()[-1]
    assert "photos in 1000; jobs 1000 before the restart, 1000 after" in last, last
    assert last.endswith("duplicates 0; wrongly failed 0"), last
    results, painted = map(int, re.search(r"results (\d+) for (\d+) done", last).groups())
    assert results == painted >= 3, last
    assert "all 1000 queued after" in done.stdout
