"""What the gallery and `nstd status` say stays true: a photo under two names, results deleted by
hand or with `nstd delete`, a photo dropped again after its result was deleted, a stop."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import ROOT, job_rows, png, wait_for

pytestmark = pytest.mark.slow


def status(config) -> dict:
    r = subprocess.run([sys.executable, "-m", "nstd", "status", "--json", "--config", str(config)],
                       capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(r.stdout)


def test_the_gallery_and_status_follow_the_outbox(tmp_path, daemon_with):
    config, d = daemon_with({"photo.png": png(5), "again.png": png(5), "other.png": png(6)})
    outbox, inbox = tmp_path / "outbox", tmp_path / "inbox"
    index = outbox / "index.html"
    wait_for(lambda: all((tmp_path / "archive" / n).exists() for n in ("photo.png", "again.png", "other.png")),
             120, what="three photos painted")
    wait_for(lambda: "3 results" in index.read_text(), 30, what="the gallery after the last job")
    page = index.read_text()
    for name in ("photo.png", "again.png", "other.png"):   # the second name of one photo has its card too
        assert f"<h2>{name}</h2>" in page

    (outbox / "stripes" / "again__stripes.png").unlink()    # deleted by hand
    wait_for(lambda: "<h2>again.png</h2>" not in index.read_text(), 60, what="the card of the deleted result gone")
    assert "2 results" in index.read_text() and d.saw("results deleted from the outbox: no longer counted or shown")
    assert "<h2>photo.png</h2>" in index.read_text()        # its twin, same painting, still there
    assert status(config)["jobs"]["done"] == 2 and status(config)["jobs"]["deleted"] == 1

    other = next(r["id"] for r in job_rows(config) if r["relpath"] == "other.png")
    r = subprocess.run([sys.executable, "-m", "nstd", "delete", str(other), "--config", str(config)],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert not (outbox / "stripes" / "other__stripes.png").exists()
    assert not (outbox / "stripes" / "other__stripes.json").exists()
    wait_for(lambda: "<h2>other.png</h2>" not in index.read_text(), 60, what="the card of `nstd delete`d gone")
    assert "1 result, " in index.read_text()

    (inbox / "again.png").write_bytes(png(5))                 # wanted after all: dropped again
    wait_for(lambda: "<h2>again.png</h2>" in index.read_text(), 120, what="its card back")
    assert (outbox / "stripes" / "again__stripes.png").is_file() and "2 results" in index.read_text()

    assert d.stop() == 0
    assert "daemon stopped at" in index.read_text()
    (outbox / "stripes" / "photo__stripes.png").unlink()     # while no daemon looks
    facts = status(config)
    assert facts["jobs"]["done"] == 1 and facts["jobs"]["deleted"] == 2
