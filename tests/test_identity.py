"""A job id is never handed out twice: a state file rebuilt, reset or restored from an older backup
starts above every id the outbox's files carry (loss logs, thumbnails, previews, the trash), and a
trash folder is restored only into the job whose key it carries."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import png, wait_for, write_config
from nstd.config import load_config
from nstd.outbox.rebuild import highest_id_on_disk
from nstd.outbox.trash import in_trash, job_trash, restore_from_trash
from nstd.store import Store
from test_first_hour import state_with_jobs


def test_the_floor_comes_from_thumbnails_previews_and_the_trash_and_new_jobs_start_above_it(tmp_path):
    outbox = tmp_path / "outbox"
    for rel in (".nstd/thumbs/job4.jpg", ".nstd/thumbs/job9-view.jpg", ".nstd/thumbs/in-abc.jpg",
                ".nstd/previews/job11.jpg", ".nstd/thumbs/job123456789012345678901.jpg"):
        (outbox / rel).parent.mkdir(parents=True, exist_ok=True)
        (outbox / rel).write_bytes(b"")
    assert highest_id_on_disk(outbox) == 11                       # a 21-digit name is nobody's id
    job_trash(outbox, 17, "k" * 64).mkdir(parents=True)
    assert highest_id_on_disk(outbox) == 17

    config, store, ids = state_with_jobs(tmp_path, ("a.png",))
    assert ids == [1]
    store.raise_job_id_floor(highest_id_on_disk(outbox))
    store.raise_job_id_floor(3)                                    # a floor never goes down
    store.close()
    _, store, ids = state_with_jobs(tmp_path, ("b.png", "c.png"))
    assert ids == [18, 19]
    store.close()


def test_a_trash_folder_of_another_job_with_the_same_id_is_never_restored_into_this_one(tmp_path):
    outbox = tmp_path / "outbox"
    load_config(write_config(tmp_path))                            # the outbox is a confined folder
    old = job_trash(outbox, 5, "a" * 64)
    (old / "stripes").mkdir(parents=True)
    (old / "stripes" / "x__stripes.png").write_bytes(png(1))
    with pytest.raises(Exception, match="nothing of it is in the trash"):
        restore_from_trash(outbox, 5, "b" * 64)
    assert restore_from_trash(outbox, 5, "a" * 64) == [outbox / "stripes" / "x__stripes.png"]
    assert in_trash(outbox) == {}


def nstd(config, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nstd", *args, "--config", str(config)],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_after_a_reset_state_file_a_new_photo_gets_a_new_id_and_its_undo_brings_back_its_own_painting(
        tmp_path, daemons):
    config = write_config(tmp_path)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for n in (1, 2):
        (inbox / f"p{n}.png").write_bytes(png(n))
    d = daemons(config)
    wait_for(lambda: len(d.saw("job done")) == 2, 120, what="two photos painted")
    assert d.stop() == 0
    second = tmp_path / "outbox" / "stripes" / "p2__stripes.png"
    assert nstd(config, "delete", "2").returncode == 0 and not second.exists()
    for p in (tmp_path / ".nstd").glob("state.sqlite*"):
        p.unlink()                                                 # reset: the folders are all there is

    (inbox / "p3.png").write_bytes(png(3))
    d2 = daemons(config)
    wait_for(lambda: len(d2.saw("job done")) == 1, 120, what="the new photo painted")
    assert d2.stop() == 0
    (done,) = [e for e in d2.saw("job done")]
    assert done["job_id"] > 2, done                                # not job 2 again: its deletion is in the trash
    third = tmp_path / "outbox" / "stripes" / "p3__stripes.png"
    assert json.loads(third.with_suffix(".json").read_text())["job_id"] == done["job_id"]

    assert nstd(config, "delete", str(done["job_id"])).returncode == 0 and not third.exists()
    restored = nstd(config, "restore", str(done["job_id"]))
    assert restored.returncode == 0, restored.stderr
    assert third.read_bytes() and not second.exists()              # its own painting back, not job 2's
    assert any(in_trash(tmp_path / "outbox"))                      # job 2's deletion still waits there
    store = Store(load_config(config).state)
    assert store.find_job(2) is None or store.find_job(2).input_relpath != "p3.png"
    store.close()


@pytest.mark.slow
def test_a_moved_nstd_folder_keeps_every_result_and_paints_nothing_twice(tmp_path, daemons):
    home = tmp_path / "home" / "nstd"
    home.mkdir(parents=True)
    config = write_config(home)                                    # relative folders, as `nstd init` writes
    (home / "inbox").mkdir()
    for n in (1, 2):
        (home / "inbox" / f"p{n}.png").write_bytes(png(n))
    d = daemons(config)
    wait_for(lambda: len(d.saw("job done")) == 2, 120, what="two photos painted")
    assert d.stop() == 0

    moved = tmp_path / "srv" / "nstd"
    moved.parent.mkdir()
    (home).rename(moved)                                            # mv ~/nstd /srv/nstd
    config = moved / "config.yaml"
    (moved / "inbox" / "p1.png").write_bytes(png(1))                # the same photo dropped again
    d2 = daemons(config)
    d2.wait_ready()
    said = d2.saw("a folder moved: the state follows it")
    assert {e["role"] for e in said} >= {"inbox", "outbox", "archive", "config"}
    wait_for(lambda: (moved / "archive" / "p1.png").exists() and not (moved / "inbox" / "p1.png").exists(), 120,
             what="the photo dropped again filed")
    assert not d2.saw("results deleted from the outbox: no longer counted or shown")
    assert not d2.saw("job running")                                # nothing painted twice
    assert d2.stop() == 0
    status = nstd(config, "status")
    assert "2 done, 0 failed, 0 deleted" in status.stdout, status.stdout
    page = (moved / "outbox" / "index.html").read_text()
    assert "2 results" in page
    store = Store(load_config(config).state)
    assert all(str(moved) in (j.outputs or {}).get("image", "") for j in store.done_jobs_of(1) + store.done_jobs_of(2))
    store.close()


@pytest.mark.slow
def test_an_older_backup_restored_is_checked_against_the_folders_and_nothing_is_lost_or_painted_twice(
        tmp_path, daemons):
    config = write_config(tmp_path)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "p1.png").write_bytes(png(1))
    d = daemons(config)
    wait_for(lambda: len(d.saw("job done")) == 1, 120, what="the first photo painted")
    backup = tmp_path / "last-week.sqlite"
    assert nstd(config, "backup", str(backup)).returncode == 0      # the backup knows p1 alone
    for n in (2, 3):
        (inbox / f"p{n}.png").write_bytes(png(n))
    (inbox / "notes.png").write_text("not a picture")
    wait_for(lambda: len(d.saw("job done")) == 3 and d.saw("input refused"), 120, what="two more and a refusal")
    third = next(e["job_id"] for e in d.saw("job done") if "p3__stripes" in e["image"])
    assert nstd(config, "delete", str(third)).returncode == 0
    assert d.stop() == 0
    state = tmp_path / ".nstd" / "state.sqlite"
    for suffix in ("-wal", "-shm"):
        Path(f"{state}{suffix}").unlink(missing_ok=True)
    backup.replace(state)                                            # restored as the docs say

    d2 = daemons(config)
    d2.wait_ready()
    (adopted,) = d2.saw("the folders hold what the state file did not know: adopted")
    assert (adopted["results"], adopted["refused"], adopted["deleted"]) == (1, 1, 1), adopted
    status = nstd(config, "status").stdout
    assert "2 done, 0 failed, 1 deleted" in status, status
    assert not d2.saw("job running")                                 # nothing painted twice
    restored = nstd(config, "restore", str(third))
    assert restored.returncode == 0, restored.stderr
    assert (tmp_path / "outbox" / "stripes" / "p3__stripes.png").is_file()
    retried = nstd(config, "retry")
    assert retried.returncode == 0 and "1 " in retried.stdout, retried.stdout
    wait_for(lambda: len(d2.saw("input refused")) == 1, 120, what="the refused photo, tried again, refused again")
    (inbox / "p4.png").write_bytes(png(4))
    wait_for(lambda: d2.saw("job done"), 120, what="a new photo painted")
    assert d2.saw("job done")[0]["job_id"] > third
