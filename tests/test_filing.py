"""Filing decisions in-process: a real store and real folders, a fake clock (`now` passed in)."""

from __future__ import annotations

import hashlib
import json
import re
from types import SimpleNamespace

import pytest

from conftest import png
from nstd.outbox.filing import MAX_TRIES, Filing
from nstd.core.jobs import JobState
from nstd.store import Store


class Log:
    """A stand-in logger that keeps events for the test to read."""

    def __init__(self):
        self.events = []

    def __getattr__(self, level):
        return lambda event, **kw: self.events.append((level, event, kw))


@pytest.fixture
def setup(tmp_path):
    folders = {n: tmp_path / n for n in ("inbox", "archive", "failed", "outbox")}
    for f in folders.values():
        f.mkdir()
    config = SimpleNamespace(**folders, after_success="archive",
                             input_folders=(folders["inbox"], folders["archive"], folders["failed"]))
    store = Store(tmp_path / "state.sqlite")
    log = Log()
    filing = Filing(config, store, log, on_filed=lambda: None, on_replaced=lambda p: None)
    yield SimpleNamespace(store=store, filing=filing, log=log, **folders)
    store.close()


def painted(s, rel: str, seed: int, after_success="archive"):
    path = s.inbox / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png(seed))
    _, (jid,), _ = s.store.add_input(rel, str(path), hashlib.sha256(png(seed)).hexdigest(), 1,
                                     [(f"k{seed}", "r", "s", {})])
    s.store.claim_next()
    s.store.finish(jid, {"image": "x"})
    return path


def test_one_input_that_cannot_be_filed_waits_alone_then_ends_in_failed(setup):
    s = setup
    (s.archive / "sub").write_text("in the way")          # archive/sub cannot become a folder
    blocked = painted(s, "sub/a.png", 1)
    fine = painted(s, "b.png", 2)
    s.filing.tick(now=0.0)
    assert (s.archive / "b.png").exists() and not fine.exists()   # not held up by the other
    assert blocked.exists()
    now = 0.0
    for attempt in range(2, MAX_TRIES + 1):
        s.filing.tick(now)                                 # not due yet: nothing tried
        assert sum(e[1] == "cannot file the input away; will try again" for e in s.log.events) == attempt - 1
        now += 61.0
        s.filing.tick(now)
    assert not blocked.exists()
    report = json.loads((s.failed / "sub__a.png.error.json").read_text())
    assert report["stage"] == "filing" and "could not be filed away" in report["error"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", report["time"])  # people read it
    assert (s.failed / "sub__a.png").read_bytes() == png(1)
    assert s.store.input_counts() == {"archived": 1, "failed": 1}


def test_an_input_that_cannot_be_moved_anywhere_is_marked_stuck_and_left(setup, monkeypatch):
    s = setup
    path = painted(s, "a.png", 3)
    import nstd.outbox.filing as filing

    def refuse(*_a, **_k):
        raise PermissionError(1, "Operation not permitted")
    monkeypatch.setattr(filing, "move_input", refuse)
    for i in range(MAX_TRIES):
        s.filing.tick(now=i * 100.0)
    assert path.exists() and s.store.input_counts() == {"stuck": 1}
    assert s.log.events[-1][1] == "input cannot be moved at all: left in the inbox and not taken again"


def test_a_failed_job_with_an_empty_error_still_files_its_input(setup):
    s = setup
    path = s.inbox / "a.png"
    path.write_bytes(png(4))
    _, (jid,), _ = s.store.add_input("a.png", str(path), hashlib.sha256(png(4)).hexdigest(), 1, [("k", "r", "s", {})])
    s.store.claim_next()
    s.store.fail(jid, "", permanent=True, max_attempts=1)
    s.filing.tick(now=0.0)
    assert json.loads((s.failed / "a.png.error.json").read_text())["error"] == "s: no reason recorded"
    assert s.store.job(jid).state is JobState.FAILED


@pytest.mark.parametrize("after_success, inbox_keeps, state", [("delete", False, "deleted"), ("keep", True, "kept")])
def test_after_success_delete_or_keep(setup, after_success, inbox_keeps, state):
    s = setup
    s.filing.config.after_success = after_success
    path = painted(s, "a.png", 5)
    s.filing.tick(now=0.0)
    assert path.exists() is inbox_keeps and not (s.archive / "a.png").exists()
    assert s.store.input_counts() == {state: 1}


def mounted_tmpfs(folder, size="2m"):
    """A small tmpfs of the test's own on `folder` (as root; skipped where mounting is refused)."""
    import subprocess
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True,
                       text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip() or r.returncode}")
    return lambda *opts: subprocess.run(["mount", "-o", ",".join(("remount",) + opts), str(folder)], check=True)


def test_a_read_only_archive_is_waited_out_and_never_fails_a_photo(setup):
    """The machine's fault: a remount read-only (then a full disk) sends nothing to failed/; the
    photo is filed once the archive is writable again."""
    import subprocess
    s = setup
    remount = mounted_tmpfs(s.archive)
    try:
        remount("ro")
        photo = painted(s, "a.png", 1)
        for attempt in range(3 * MAX_TRIES):
            s.filing.tick(now=attempt * 120.0)                        # far past every backoff
        assert photo.exists() and list(s.failed.iterdir()) == []     # waiting, not failed
        assert s.store.input_at(str(photo)).state == "pending"
        said = [kw["error"] for level, event, kw in s.log.events if "fault of the machine" in event]
        assert said and "Read-only file system" in said[0]
        told = lambda: [(level, kw) for level, event, kw in s.log.events if event.startswith("a folder cannot be")]
        assert [level for level, _ in told()] == ["warning"]                    # 24 tries, told once
        (fault,) = s.store.folder_faults().values()                             # what `nstd status` shows
        assert s.store.folder_faults().keys() == {"archive"} and "Read-only" in fault["error"]
        assert fault["path"] == str(s.archive) and fault["needs"] == f"the photo needs {len(png(1))} B"
        remount("rw")
        with open(s.archive / "ballast", "wb", buffering=0) as ballast:        # now full instead
            try:
                while True:
                    ballast.write(b"\0" * 4096)
            except OSError as e:
                assert e.errno == 28  # ENOSPC
        s.filing.tick(now=10_000.0)
        assert photo.exists() and list(s.failed.iterdir()) == []
        assert len(told()) == 2 and "No space left" in s.store.folder_faults()["archive"]["error"]  # a new fault
        assert s.store.folder_faults()["archive"]["free"] < 4096
        (s.archive / "ballast").unlink()
        s.filing.tick(now=20_000.0)
        assert (s.archive / "a.png").read_bytes() == png(1) and not photo.exists()
        assert s.store.folder_faults() == {} and any(e == "the folder can be written again: the work goes on"
                                                     for _, e, _ in s.log.events)
    finally:
        subprocess.run(["umount", "-l", str(s.archive)], check=False)


def test_a_painted_photo_whose_share_was_unmounted_waits_and_is_never_called_gone(setup, tmp_path):
    """A real bind mount as the inbox's share, unmounted after the painting: the photo seems gone,
    but its folder is on another file system than at start, so it waits (a fault of the machine)
    and is archived once the share is back."""
    import subprocess
    s = setup
    share = tmp_path / "share"
    share.mkdir()
    bind = ["mount", "--bind", str(share), str(s.inbox)]
    if subprocess.run(bind, capture_output=True).returncode != 0:
        pytest.skip("cannot bind-mount here (needs root)")
    try:
        filing = Filing(s.filing.config, s.store, s.log, on_filed=lambda: None, on_replaced=lambda p: None)
        painted(s, "a.png", 5)
        subprocess.run(["umount", "-l", str(s.inbox)], check=True)
        filing.tick(now=0.0)
        assert s.store.input_counts() == {"pending": 1}                # not "gone"
        assert any("a fault of the machine" in e[1] for e in s.log.events)
        subprocess.run(bind, check=True)
        filing.tick(now=120.0)
        assert s.store.input_counts() == {"archived": 1} and (s.archive / "a.png").read_bytes() == png(5)
    finally:
        subprocess.run(["umount", "-l", str(s.inbox)], capture_output=True)
