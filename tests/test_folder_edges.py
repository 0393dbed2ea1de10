"""The edges of one host (issue 19): nothing outside the folders is read or moved, whatever is swapped
in while a photo waits; a job paints with the pictures it names, whatever their stamps say."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys

import pytest
from PIL import Image

from conftest import ROOT, job_rows, make_style, png, wait_for, write_config

pytestmark = pytest.mark.slow


def nstd_cli(config):
    return lambda *a: subprocess.run([sys.executable, "-m", "nstd", *a, "--config", str(config)],
                                     capture_output=True, text=True, cwd=ROOT, timeout=60)


def results(outbox) -> list:
    return sorted(p for p in outbox.rglob("*.png") if ".loss" not in p.name and "thumb" not in p.parts)


def queued_while_paused(tmp_path, daemon_with, rel: str):
    """A started daemon, paused, with the photo `rel` in its queue: (config, daemon, nstd)."""
    config, d = daemon_with({})
    nstd = nstd_cli(config)
    assert nstd("pause").returncode == 0
    (tmp_path / "inbox" / rel).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / "inbox" / rel).write_bytes(png(1))
    wait_for(lambda: len(job_rows(config)) == 1, 60, what="the photo queued")
    return config, d, nstd


def test_a_queued_photos_folder_swapped_for_a_link_is_never_read_or_moved_from_outside(tmp_path, daemon_with):
    config, d, nstd = queued_while_paused(tmp_path, daemon_with, "sub/x.png")
    # The same bytes outside: the content check alone cannot tell them apart.
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.png").write_bytes(png(1))
    os.rename(tmp_path / "inbox" / "sub", tmp_path / "elsewhere")
    os.symlink(outside, tmp_path / "inbox" / "sub")
    assert nstd("resume").returncode == 0
    wait_for(lambda: job_rows(config)[0]["state"] not in ("queued", "running"), 120, what="the job to end")
    job = job_rows(config)[0]
    assert job["state"] == "withdrawn" and "no longer in the inbox" in job["error"], job   # not painted, not failed
    report = tmp_path / "failed" / "sub.error.json"              # the link itself is refused, never followed
    wait_for(report.exists, 60, what="the link refused")
    assert (tmp_path / "failed" / "sub").is_symlink() and "symbolic link" in json.loads(report.read_text())["error"]
    assert (outside / "x.png").read_bytes() == png(1) and sorted(os.listdir(outside)) == ["x.png"]
    assert (tmp_path / "elsewhere" / "x.png").read_bytes() == png(1)
    assert sorted(os.listdir(tmp_path / "failed")) == ["sub", "sub.error.json"]
    assert not (tmp_path / "archive").exists() or list((tmp_path / "archive").rglob("*")) == []
    assert results(tmp_path / "outbox") == []                             # nothing painted from outside
    wait_for(lambda: json.loads(nstd("status", "--json").stdout)["inputs"].get("gone") == 1, 60,
             what="the photo closed as gone")
    assert d.proc.poll() is None and not d.saw("job failed")


def test_a_photo_renamed_while_queued_is_painted_once_under_its_new_name_and_nothing_fails(tmp_path, daemon_with):
    config, d, nstd = queued_while_paused(tmp_path, daemon_with, "before.png")
    os.rename(tmp_path / "inbox" / "before.png", tmp_path / "inbox" / "after.png")
    wait_for(lambda: len(job_rows(config)) == 2, 60, what="the new name queued")
    assert nstd("resume").returncode == 0
    wait_for(lambda: {j["relpath"]: j["state"] for j in job_rows(config)} == {"before.png": "withdrawn",
                                                                            "after.png": "done"}, 120,
             what="the new name painted, the old withdrawn")
    old = job_rows(config)[0]
    assert old["error"] == "renamed to after.png before it was painted"
    wait_for(lambda: json.loads(nstd("status", "--json").stdout)["inputs"] == {"archived": 1, "renamed": 1}, 60,
             what="both names filed")
    assert sorted(os.listdir(tmp_path / "archive")) == ["after.png"]
    assert not (tmp_path / "failed").exists() or list((tmp_path / "failed").iterdir()) == []
    assert [p.name for p in results(tmp_path / "outbox")] == ["after__stripes.png"]
    assert not d.saw("job failed") and d.saw("job withdrawn: its photo left", input="before.png")
    assert "1 withdrawn" in nstd("status").stdout


def bmp(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="BMP")  # uncompressed: two pictures of one size are files of one size
    return buf.getvalue()


def test_a_style_replaced_by_a_picture_of_the_same_size_and_mtime_is_painted_with_the_new_one(tmp_path, daemons):
    config = write_config(tmp_path)
    style = tmp_path / "styles" / "stripes.png"
    first, second = bmp(make_style()), bmp(make_style().transpose(Image.Transpose.ROTATE_90).point(lambda v: 255 - v))
    assert len(first) == len(second) and first != second
    style.write_bytes(first)
    stamp = style.stat().st_mtime_ns
    (tmp_path / "inbox").mkdir()
    d = daemons(config)
    d.wait_ready()
    (tmp_path / "inbox" / "a.png").write_bytes(png(1))
    wait_for(lambda: [j["state"] for j in job_rows(config)] == ["done"], 120, what="the first painting")
    with open(style, "r+b") as f:  # what `cp -p` does: the same file, new bytes, the old mtime put back
        f.write(second)
    os.utime(style, ns=(stamp, stamp))
    assert style.stat().st_size == len(first) and style.stat().st_mtime_ns == stamp
    (tmp_path / "inbox" / "again.png").write_bytes(png(1))             # the same photo once more
    wait_for(lambda: [j["state"] for j in job_rows(config)] == ["done", "done"], 120, what="the second painting")
    logs = {}
    for row in job_rows(config):
        outputs = json.loads(row["outputs"])
        logs[row["relpath"]] = (json.loads(open(outputs["log"]).read()), open(outputs["image"], "rb").read())
    assert logs["a.png"][0]["style_files"][0]["sha256"] == hashlib.sha256(first).hexdigest()
    assert logs["again.png"][0]["style_files"][0]["sha256"] == hashlib.sha256(second).hexdigest()
    assert logs["a.png"][1] != logs["again.png"][1]                     # painted with the new picture
    assert d.proc.poll() is None


def test_a_failed_rerun_or_retry_never_moves_its_photo_and_leaves_one_reason(tmp_path, daemons):
    config = write_config(tmp_path, rules='  - match: "bad/*"\n    style: broken\n'
                                          '  - match: "**/*"\n    style: stripes\n')
    style = tmp_path / "styles" / "broken.png"
    make_style().save(style)
    good = style.read_bytes()
    config.write_text(config.read_text().replace("styles:\n", "styles:\n  broken: ./styles/broken.png\n"))
    (tmp_path / "inbox" / "bad").mkdir(parents=True)
    (tmp_path / "inbox" / "photo.png").write_bytes(png(1))
    d = daemons(config)
    d.wait_ready()
    nstd = nstd_cli(config)

    def queued_then_broken(*command):
        # The commands check the config, so the style breaks between the queueing and the painting.
        style.write_bytes(good)
        assert nstd("pause").returncode == 0
        r = nstd(*command)
        assert r.returncode == 0, r.stderr
        style.write_bytes(b"no longer a picture")
        assert nstd("resume").returncode == 0

    wait_for(lambda: (tmp_path / "archive" / "photo.png").exists(), 120, what="the first painting")
    for attempt in range(2):
        queued_then_broken("rerun", "photo.png", "--style", "broken", "--set", f"iterations={2 + attempt}")
        wait_for(lambda: job_rows(config)[-1]["state"] == "failed", 120, what="the re-run to fail")
        wait_for(lambda: json.loads(nstd("status", "--json").stdout)["inputs"].get("pending", 0) == 0, 60,
                 what="the photo filed")
        assert sorted(os.listdir(tmp_path / "archive")) == ["photo.png"]       # never moved
        assert not (tmp_path / "failed").exists() or list((tmp_path / "failed").rglob("*")) == []
    status = json.loads(nstd("status", "--json").stdout)
    assert status["inputs"] == {"archived": 1}, status["inputs"]

    (tmp_path / "inbox" / "bad" / "x.png").write_bytes(png(2))
    report = tmp_path / "failed" / "bad" / "x.png.error.json"
    wait_for(report.exists, 120, what="the photo failed")
    for _ in range(2):
        (job,) = [j for j in job_rows(config) if j["relpath"] == "bad/x.png"]
        before = report.stat().st_mtime_ns
        queued_then_broken("retry", str(job["id"]))
        wait_for(lambda job=job: [(j["state"], j["finished"] != job["finished"]) for j in job_rows(config)
                                  if j["relpath"] == "bad/x.png"] == [("failed", True)], 120, what="the retry to fail")
        wait_for(lambda before=before: report.stat().st_mtime_ns != before, 60, what="the reason rewritten in place")
    assert sorted(os.listdir(tmp_path / "failed" / "bad")) == ["x.png", "x.png.error.json"]  # one photo, one reason
    assert "not an image" in json.loads(report.read_text())["error"] and d.proc.poll() is None


def test_a_reload_replans_the_queued_jobs_to_the_config_in_force(tmp_path, daemon_with):
    config, d, nstd = queued_while_paused(tmp_path, daemon_with, "a.png")
    other = tmp_path / "styles" / "other.png"
    make_style().transpose(Image.Transpose.ROTATE_90).save(other)
    text = config.read_text()
    config.write_text(text.replace("./styles/stripes.png", "./styles/other.png").replace("size: 32", "size: 24"))
    r = nstd("reload")
    assert r.returncode == 0, r.stderr
    (reloaded,) = d.saw("config reloaded")
    assert reloaded["queued_jobs"] == {"replanned": 1, "kept": 0, "withdrawn": 0}
    assert nstd("resume").returncode == 0
    wait_for(lambda: job_rows(config)[0]["state"] == "done", 120, what="the painting")
    log = json.loads(open(json.loads(job_rows(config)[0]["outputs"])["log"]).read())
    assert log["style_files"][0]["path"] == str(other)
    assert log["style_files"][0]["sha256"] == hashlib.sha256(other.read_bytes()).hexdigest()
    assert log["params"]["size"] == 24
