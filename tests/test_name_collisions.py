"""Names that are one name on another machine (issue 32 item 5), through a real daemon: the same
name in NFC and NFD (macOS writes NFD over SMB), names that differ only in case on a
case-insensitive outbox and archive, and long names that are cut to the same bytes once the
painting's suffix is on. Each photo gets its own result and its own place in the archive;
nothing overwrites another."""

from __future__ import annotations

import json
import subprocess
import unicodedata

import pytest

from conftest import job_rows, png, wait_for, write_config

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
             and not list((tmp_path / "inbox").iterdir()), 120, what="all four archived, each in a place of its own")
    kept = sorted(p.name for p in archive.iterdir())
    assert NFC in kept and NFD in kept                                  # byte names, as the share gave them
    assert len([n for n in kept if n.startswith("x" * 100)]) == 2        # cut to fit, apart by a hash
    assert len(results(tmp_path / "outbox")) == 4 and owners(tmp_path / "outbox") == set(names)
    assert all(len(p.name.encode()) <= 255 - len(".loss") for p in results(tmp_path / "outbox"))
    assert sorted(r["relpath"] for r in job_rows(config)) == sorted(names)
    assert {r["state"] for r in job_rows(config)} == {"done"}
    assert d.stop() == 0


@pytest.fixture
def casefold_folders(tmp_path):
    """An outbox and an archive on one case-insensitive ext4 (casefold), as a Windows or macOS share is."""
    image, mnt = tmp_path / "casefold.img", tmp_path / "share"
    mnt.mkdir()
    subprocess.run(["truncate", "-s", "32M", str(image)], check=True)
    made = subprocess.run(["mkfs.ext4", "-q", "-F", "-O", "casefold", str(image)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot make a casefold ext4 here: {made.stderr.strip()[:200]}")
    mounted = subprocess.run(["mount", "-o", "loop", str(image), str(mnt)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a case-insensitive ext4 here (needs root, a loop device and a kernel with "
                    f"CONFIG_UNICODE): {mounted.stderr.strip()[:200]}")
    try:
        for sub in ("outbox", "archive"):
            (mnt / sub).mkdir()
            subprocess.run(["chattr", "+F", str(mnt / sub)], check=True)  # case-insensitive from here down
        yield mnt
    finally:
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
