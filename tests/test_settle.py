"""The settle tracker is pure: fed paths and a clock, it says which files stopped changing."""

from __future__ import annotations

from types import SimpleNamespace

from nstd.intake.inbox import SettleTracker


class FakeFiles:
    def __init__(self):
        self.files: dict[str, tuple[int, int]] = {}

    def stat(self, path):
        if path not in self.files:
            raise FileNotFoundError(path)
        size, mtime = self.files[path]
        return SimpleNamespace(st_size=size, st_mtime_ns=mtime)


def test_a_growing_file_settles_only_after_it_stops():
    fs = FakeFiles()
    t = SettleTracker(2.0, stat=fs.stat)
    fs.files["a"] = (10, 1)
    t.observe("a", now=0)
    for now, size in [(1, 20), (2.5, 30), (4, 40)]:
        fs.files["a"] = (size, now)
        assert t.poll(now) == []
    assert t.poll(5.9) == []
    assert t.poll(6.0) == [("a", 0)]
    assert len(t) == 0


def test_touch_without_change_does_not_reset_but_mtime_change_does():
    fs = FakeFiles()
    t = SettleTracker(1.0, stat=fs.stat)
    fs.files["a"] = (5, 100)
    t.observe("a", 0)
    fs.files["a"] = (5, 101)  # same size, new mtime: still being written
    assert t.poll(1.5) == []
    assert t.poll(2.5) == [("a", 0)]


def test_vanished_files_are_dropped_and_retries_are_counted():
    fs = FakeFiles()
    t = SettleTracker(0.0, stat=fs.stat)
    t.observe("missing", 0)
    assert len(t) == 0
    fs.files["b"] = (1, 1)
    t.observe("b", 0, attempts=2)
    del fs.files["b"]
    assert t.poll(1) == [] and len(t) == 0
    fs.files["c"] = (1, 1)
    t.observe("c", 0, attempts=1)
    assert t.poll(0) == [("c", 1)]


def test_a_file_that_did_not_decode_waits_longer_each_time_and_starts_afresh_when_it_changes():
    fs = FakeFiles()
    t = SettleTracker(1.0, stat=fs.stat)
    fs.files["a"] = (10, 1)
    t.observe("a", now=0, attempts=2, failed_stamp=(10, 1))   # failed twice, unchanged since
    assert t.poll(3.9) == []
    assert t.poll(4.0) == [("a", 2)]                           # 1 s * 2**2 after the last look
    t.observe("a", now=10, attempts=2, failed_stamp=(10, 1))
    fs.files["a"] = (20, 11)                                   # it grew: still arriving
    assert t.poll(10.5) == []
    assert t.poll(11.5) == [("a", 0)]                          # the count starts again: never refused mid-upload
