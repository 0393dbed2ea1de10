"""Links in the outbox are never followed: every folder nstd writes, moves or deletes in is reached
beneath its root (nstd.core.confine). The trash, a rule's folder and the outbox's hidden folder are
each swapped for a link to a folder outside, holding files with the names nstd would touch; those
files must stay as they were, and the fault must be named."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from conftest import png, wait_for, write_config
from nstd.cli import main
from nstd.config import load_config
from nstd.core import confine
from nstd.outbox.files import atomic_write_bytes
from nstd.outbox.results import Upkeep
from nstd.outbox.trash import empty_trash, job_trash, trash_dir
from nstd.store import Store
from test_first_touch import finished


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def outside_with_job_folders(tmp_path: Path) -> Path:
    """A folder outside nstd's, holding what the trash sweep would remove were it followed there."""
    outside = tmp_path / "precious"
    for n in (1, 2, 3):
        (outside / f"job{n}").mkdir(parents=True)
        (outside / f"job{n}" / "thesis.tex").write_text(f"chapter {n}")
    old = time.time() - 30 * 86400
    for n in (1, 2, 3):
        os.utime(outside / f"job{n}", (old, old))
    return outside


class Said:
    def __init__(self):
        self.lines = []

    def warning(self, event, **kw):
        self.lines.append((event, kw))

    info = warning


def test_a_trash_replaced_by_a_link_is_never_swept_or_deleted_into(tmp_path, capsys):
    config, (a, _), (image, _) = finished(tmp_path)
    outbox = tmp_path / "outbox"
    outside = outside_with_job_folders(tmp_path)
    before = snapshot(outside)
    trash_dir(outbox).parent.mkdir(parents=True, exist_ok=True)
    trash_dir(outbox).symlink_to(outside)

    with pytest.raises(confine.LinkInFolder) as e:
        empty_trash(outbox, now=time.time() + 60 * 86400)
    assert e.value.filename == str(trash_dir(outbox)) and "never followed" in e.value.strerror
    said = Said()
    store = Store(load_config(config).state)
    Upkeep(store, outbox, said).tick(time.monotonic())               # the daemon's hourly sweep: named, goes on
    store.close()
    assert said.lines and said.lines[0][0] == "the trash cannot be emptied"

    assert main(["delete", "--config", str(config), str(a)]) == 1
    err = capsys.readouterr().err
    assert "not deleted" in err and "never followed" in err and str(trash_dir(outbox)) in err
    assert image.is_file()                                            # nothing moved
    assert snapshot(outside) == before and sorted(p.name for p in outside.iterdir()) == ["job1", "job2", "job3"]


def test_a_link_inside_a_job_trash_is_removed_itself_never_what_it_points_to(tmp_path):
    outbox = tmp_path / "outbox"
    confine.confine_to(outbox)
    outside = outside_with_job_folders(tmp_path)
    before = snapshot(outside)
    folder = job_trash(outbox, 7)
    folder.mkdir(parents=True)
    (folder / "stripes").symlink_to(outside)
    (folder / "kept.png").write_bytes(png())
    old = time.time() - 30 * 86400
    os.utime(folder, (old, old))
    assert empty_trash(outbox) == [7]
    assert not folder.exists() and snapshot(outside) == before


def test_writes_into_a_rule_folder_or_hidden_folder_that_became_a_link_are_refused(tmp_path):
    outbox = tmp_path / "outbox"
    confine.confine_to(outbox)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outbox / "stripes").parent.mkdir(parents=True)
    (outbox / "stripes").symlink_to(outside)
    (outbox / ".nstd").symlink_to(outside)
    for target in (outbox / "stripes" / "a__stripes.png", outbox / ".nstd" / "thumbs" / "job1.jpg",
                   outbox / ".nstd" / "trash" / "job1" / "x.png"):
        with pytest.raises(confine.LinkInFolder):
            atomic_write_bytes(target, b"painted")
        with pytest.raises(confine.LinkInFolder):
            confine.unlink(target)
    assert list(outside.iterdir()) == []
    atomic_write_bytes(outbox / "index.html", b"ok")                 # the outbox itself is still written
    assert (outbox / "index.html").read_bytes() == b"ok"


def test_a_path_outside_every_folder_is_written_as_given(tmp_path):
    """`nstd stylize -o anywhere`: confinement is for the configured folders, not a ban on writing."""
    target = tmp_path / "mine" / "out.bin"
    atomic_write_bytes(target, b"x")
    assert confine.root_of(target) is None and target.read_bytes() == b"x"


@pytest.mark.slow
def test_a_rule_folder_swapped_for_a_link_gets_no_painting_outside_and_the_photo_waits(tmp_path, daemons):
    config = write_config(tmp_path)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (tmp_path / "outbox").mkdir()
    (tmp_path / "outbox" / "stripes").symlink_to(outside)
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "a.png").write_bytes(png())
    d = daemons(config)
    d.wait_ready()
    (said,) = wait_for(lambda: d.saw("cannot write results: pausing the queue"), 60, what="the write refused")
    assert "never followed" in said["error"]
    assert list(outside.iterdir()) == []
    (tmp_path / "outbox" / "stripes").unlink()
    wait_for(lambda: d.saw("job done"), 120, what="the photo painted once the link is gone")
    assert list(outside.iterdir()) == [] and (tmp_path / "outbox" / "stripes" / "a__stripes.png").is_file()


def test_the_photos_own_copies_leave_the_outbox_with_the_trash_of_its_last_painting(tmp_path):
    """Two paintings of one photo share its thumbnail and viewing copy: deleting one leaves them; once
    the trash of the last is emptied (no painting of it shown or restorable), they go too."""
    from nstd.outbox.results import delete_result
    from nstd.outbox.trash import trash_dir
    from test_first_hour import state_with_jobs

    config, store, (a, b) = state_with_jobs(tmp_path, ("a.png", "b.png"))
    outbox = tmp_path / "outbox"
    thumbs = outbox / ".nstd" / "thumbs"
    thumbs.mkdir(parents=True)
    photo = {"content": ".nstd/thumbs/in-abc.jpg", "content_view": ".nstd/thumbs/in-abc-view.jpg"}
    for rel in photo.values():
        (outbox / rel).write_bytes(b"jpeg")
    for job_id in (a, b):
        image = outbox / "stripes" / f"p{job_id}__stripes.png"
        image.parent.mkdir(parents=True, exist_ok=True)
        image.write_bytes(png(job_id))
        (thumbs / f"job{job_id}.jpg").write_bytes(b"jpeg")
        assert store.claim_next().id == job_id
        store.finish(job_id, {"image": str(image), "thumbs": {"result": f".nstd/thumbs/job{job_id}.jpg", **photo}})
    said = Said()
    old = time.time() - 8 * 86400

    def sweep():
        for folder in trash_dir(outbox).iterdir():
            os.utime(folder, (old, old))
        Upkeep(store, outbox, said).tick(time.monotonic())

    delete_result(store, outbox, a)
    sweep()
    assert all((outbox / rel).is_file() for rel in photo.values())     # still shown by b's card
    delete_result(store, outbox, b)
    assert all((outbox / rel).is_file() for rel in photo.values())     # b restorable: its card would need them
    sweep()
    assert not any((outbox / rel).exists() for rel in photo.values())
    assert not (thumbs / f"job{a}.jpg").exists() and list(trash_dir(outbox).iterdir()) == []
    store.close()
