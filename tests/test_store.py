"""The SQLite queue: claims, dedupe, retries, recovery and the daemon lock."""

from __future__ import annotations

import threading

import pytest

from nstd.errors import StateError
from nstd.jobs import JobState
from nstd.store import Store


def job(key="k1", style="s"):
    return (key, "rule", style, {"images": [], "params": {}, "output_ext": "png"})


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "state.sqlite")
    yield s
    s.close()


def test_wal_and_roundtrip(store):
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    input_id, new, skipped = store.add_input("a.jpg", "/in/a.jpg", "h1", 10, [job("k1"), job("k2", "t")])
    assert len(new) == 2 and skipped == []
    assert store.counts()["queued"] == 2
    j = store.claim_next()
    assert j.state is JobState.RUNNING and j.attempts == 1 and j.input_relpath == "a.jpg"
    store.finish(j.id, {"image": "x.png"})
    assert store.job(j.id).outputs == {"image": "x.png"}


def test_same_content_style_and_params_is_not_queued_twice(store):
    store.add_input("a.jpg", "/in/a.jpg", "h1", 10, [job("k1")])
    _, new, skipped = store.add_input("copy.jpg", "/in/copy.jpg", "h1", 10, [job("k1")])
    assert new == [] and skipped == ["k1"]
    assert store.counts()["queued"] == 1


def test_claims_are_atomic_across_connections(tmp_path):
    first = Store(tmp_path / "s.sqlite")
    for i in range(20):
        first.add_input(f"{i}.jpg", f"/in/{i}.jpg", f"h{i}", 1, [job(f"k{i}")])
    claimed, lock = [], threading.Lock()

    def claimer():
        s = Store(tmp_path / "s.sqlite")
        while (j := s.claim_next()) is not None:
            with lock:
                claimed.append(j.id)
        s.close()

    threads = [threading.Thread(target=claimer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == list(range(1, 21))  # each exactly once
    first.close()


def test_orphans_of_a_dead_daemon_are_requeued_without_using_an_attempt(store):
    from nstd.store import MAX_INTERRUPTIONS
    _, (jid,), _ = store.add_input("a.jpg", "/in/a.jpg", "h", 1, [job()])
    for _ in range(MAX_INTERRUPTIONS - 1):
        store.claim_next()
        assert store.requeue_orphans() == (1, 0)
        assert store.job(jid).attempts == 0
    store.claim_next()
    assert store.requeue_orphans() == (0, 1)
    (failed,) = store.jobs_in(JobState.FAILED)
    assert f"died {MAX_INTERRUPTIONS} times" in failed.error


def test_fail_retries_then_gives_up_and_retry_command_reopens(store):
    input_id, (jid,), _ = store.add_input("a.jpg", "/in/a.jpg", "h", 1, [job()])
    store.claim_next()
    assert store.fail(jid, "boom", permanent=False, max_attempts=2) is JobState.QUEUED
    store.claim_next()
    assert store.fail(jid, "boom", permanent=False, max_attempts=2) is JobState.FAILED
    ((inp, jobs),) = list(store.settled_inputs())
    store.close_input(inp.id, "failed", "/failed/a.jpg", "boom")
    assert list(store.settled_inputs()) == []
    assert store.retry() == 1
    assert store.job(jid).state is JobState.QUEUED and store.job(jid).attempts == 0
    assert store.open_input_paths() == {"/failed/a.jpg"}


def test_a_second_daemon_is_refused(tmp_path, store):
    store.lock()
    other = Store(tmp_path / "state.sqlite")
    with pytest.raises(StateError, match="another nstd daemon"):
        other.lock()
    other.close()


def test_a_corrupt_state_file_is_a_state_error(tmp_path):
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StateError, match="unusable"):
        Store(bad)


def test_readonly_needs_an_existing_file(tmp_path):
    with pytest.raises(StateError, match="no state file"):
        Store(tmp_path / "none.sqlite", readonly=True)
