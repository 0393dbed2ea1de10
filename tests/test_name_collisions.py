"""Names that are one name on another machine (issue 32 item 5), through a real daemon: the same
name in NFC and NFD (macOS writes NFD over SMB), names that differ only in case on a
case-insensitive outbox and archive, and long names that are cut to the same bytes once the
painting's suffix is on. Each photo gets its own result and its own place in the archive;
nothing overwrites another."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import unicodedata

import pytest

from conftest import ROOT, job_rows, png, wait_for, write_config

pytestmark = pytest.mark.slow

NFC = unicodedata.normalize("NFC", "café.png")
NFD = unicodedata.normalize("NFD", "café.png")


def results(outbox) -> list:
    return sorted(p for p in outbox.rglob("*.png") if not p.name.endswith(".loss.png") and ".nstd" not in p.parts)


def owners(outbox) -> set[str]:
    """The photo each result's loss log names: one result per photo, none painted over."""
    return {json.loads(p.with_suffix(".json").read_text())["input"] for p in results(outbox)}


def test_nfc_and_nfd_of_one_name_and_long_names_cut_alike_each_keep_their_own_result(tmp_path, daemons):
    assert NFC != NFD
    long_a, long_b = "x" * 240 + "-a.png", "x" * 240 + "-b.png"  # the same once cut for "__stripes.loss.png"
    names = [NFC, NFD, long_a, long_b]
    config = write_config(tmp_path)
    (tmp_path / "inbox").mkdir()
    for i, name in enumerate(names):
        (tmp_path / "inbox" / name).write_bytes(png(i + 1))  # four different photos
    d = daemons(config)
    d.wait_ready()
    archive = tmp_path / "archive"
    wait_for(lambda: archive.exists() and len(list(archive.iterdir())) == 4
             and [p.name for p in (tmp_path / "inbox").iterdir()] == [".nstd-daemon.lock"], 120,
             what="all four archived, each in a place of its own")
    kept = sorted(p.name for p in archive.iterdir())
    assert NFC in kept and NFD in kept                                  # byte names, as the share gave them
    assert len([n for n in kept if n.startswith("x" * 100)]) == 2        # cut to fit, apart by a hash
    assert len(results(tmp_path / "outbox")) == 4 and owners(tmp_path / "outbox") == set(names)
    assert all(len(p.name.encode()) <= 255 - len(".loss") for p in results(tmp_path / "outbox"))
    assert sorted(r["relpath"] for r in job_rows(config)) == sorted(names)
    assert {r["state"] for r in job_rows(config)} == {"done"}
    assert d.stop() == 0


def casefold_ext4(tmp_path, mnt) -> str:
    """mnt as a case-insensitive ext4 (casefold) on a loop device; '' if mounted, else why not."""
    image = tmp_path / "casefold.img"
    subprocess.run(["truncate", "-s", "32M", str(image)], check=True)
    made = subprocess.run(["mkfs.ext4", "-q", "-F", "-O", "casefold", str(image)], capture_output=True, text=True)
    if made.returncode != 0:
        return f"cannot make a casefold ext4: {made.stderr.strip()[:200]}"
    mounted = subprocess.run(["mount", "-o", "loop", str(image), str(mnt)], capture_output=True, text=True)
    if mounted.returncode != 0:
        return ("cannot mount a casefold ext4 (needs root, a loop device, CONFIG_UNICODE): "
                f"{mounted.stderr.strip()[:200]}")
    for sub in ("outbox", "archive"):
        (mnt / sub).mkdir()
        subprocess.run(["chattr", "+F", str(mnt / sub)], check=True)  # case-insensitive from here down
    return ""


@pytest.fixture
def casefold_folders(tmp_path):
    """An outbox and an archive on one case-insensitive folder, as a Windows or macOS share is: a
    casefold ext4 where the kernel has it, else tests/casefold_share.py's FUSE folder (which folds
    case as Samba does for its clients)."""
    mnt = tmp_path / "share"
    mnt.mkdir()
    why_not, share = casefold_ext4(tmp_path, mnt), None
    try:
        if why_not:
            if not os.path.exists("/dev/fuse") or not shutil.which("fusermount3"):
                pytest.skip(f"{why_not}; and no FUSE here for the stand-in share")
            pytest.importorskip("mfusepy", reason=f"{why_not}; and no mfusepy for the stand-in share")
            backing = tmp_path / "share-backing"
            (backing / "outbox").mkdir(parents=True)
            (backing / "archive").mkdir()
            share = subprocess.Popen([sys.executable, str(ROOT / "tests" / "casefold_share.py"), str(backing),
                                      str(mnt)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            # A stand-in that hangs fails the test; one that exits (no FUSE for this user) skips it.
            wait_for(lambda: os.path.ismount(mnt) or share.poll() is not None, 30, what="the FUSE share mounted")
            if not os.path.ismount(mnt):
                pytest.skip(f"{why_not}; and the FUSE stand-in did not mount: {share.communicate()[0][-300:]}")
        yield mnt
    finally:
        if share is not None:
            subprocess.run(["fusermount3", "-u", "-z", str(mnt)], capture_output=True)
            try:
                share.wait(30)  # unmounted, it exits
            except subprocess.TimeoutExpired:
                share.kill()
        else:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_names_that_differ_only_in_case_on_a_case_insensitive_share_each_keep_their_own_result(tmp_path, daemons,
                                                                                             casefold_folders):
    share = casefold_folders
    (share / "outbox" / "Probe").write_text("")
    assert (share / "outbox" / "probe").exists()  # the folder folds case, as the fixture says
    (share / "outbox" / "Probe").unlink()
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace("outbox: ./outbox", f"outbox: {share / 'outbox'}\n"
                                                                     f"archive: {share / 'archive'}"))
    (tmp_path / "inbox").mkdir()
    d = daemons(config)
    d.wait_ready()
    (tmp_path / "inbox" / "Beach.png").write_bytes(png(1))
    wait_for(lambda: (share / "archive" / "Beach.png").exists(), 120, what="the first photo archived")
    (tmp_path / "inbox" / "beach.png").write_bytes(png(2))  # another photo, its name the first's to this share
    wait_for(lambda: len(list((share / "archive").iterdir())) == 2, 120, what="the second archived beside it")
    assert len(results(share / "outbox")) == 2 and owners(share / "outbox") == {"Beach.png", "beach.png"}
    assert {r["state"] for r in job_rows(config)} == {"done"} and len(job_rows(config)) == 2
    assert d.stop() == 0
