"""The SQLite queue: claims, dedupe, retries, recovery and the daemon lock."""

from __future__ import annotations

import threading

import pytest

from nstd.core.errors import StateError
from nstd.core.jobs import JobState
from nstd.store import DamagedStateFile, Store


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
    assert len(new) == 2 and skipped == []  # skipped: this input's jobs done before
    assert store.counts()["queued"] == 2
    j = store.claim_next()
    assert j.state is JobState.RUNNING and j.attempts == 1 and j.input_relpath == "a.jpg"
    store.finish(j.id, {"image": "x.png"})
    assert store.job(j.id).outputs == {"image": "x.png"}


def test_the_same_photo_under_a_second_name_gets_its_own_job_and_finds_its_twin(store):
    _, (first,), _ = store.add_input("a.jpg", "/in/a.jpg", "h1", 10, [job("k1")])
    _, (second,), _ = store.add_input("copy.jpg", "/in/copy.jpg", "h1", 10, [job("k1")])
    assert first != second and store.counts()["queued"] == 2
    assert store.done_twins("k1", second) == []
    store.claim_next()
    store.finish(first, {"image": "/out/a.png"})
    (twin,) = store.done_twins("k1", second)
    assert twin.id == first and twin.outputs == {"image": "/out/a.png"}


def test_a_new_drop_of_a_failed_photo_is_a_new_request(store):
    input_id, (jid,), _ = store.add_input("a.jpg", "/in/a.jpg", "h", 1, [job()])
    store.claim_next()
    store.fail(jid, "boom", permanent=True, max_attempts=3)
    store.close_input(input_id, "failed", "/failed/a.jpg", "boom")
    again_id, new, done_before = store.add_input("a.jpg", "/in/a.jpg", "h", 1, [job()])
    assert (again_id, new, done_before) == (input_id, [jid], [])
    assert store.job(jid).state is JobState.QUEUED and store.job(jid).attempts == 0
    store.claim_next()
    store.finish(jid, {"image": "x"})
    assert store.add_input("a.jpg", "/in/a.jpg", "h", 1, [job()]) == (input_id, [], [jid])


def test_names_that_are_not_utf8_round_trip_byte_for_byte(store):
    name = b"caf\xe9 \xff.jpg".decode("utf-8", "surrogateescape")
    input_id, (jid,), _ = store.add_input(name, "/in/" + name, "h", 1, [job()])
    assert store.known_input(name, "h").relpath == name
    assert store.open_input_paths() == {"/in/" + name}
    assert store.claim_next().input_relpath == name
    store.fail(jid, f"{name}: broken", permanent=True, max_attempts=1)
    assert store.job(jid).error == "caf\\xe9 \\xff.jpg: broken"  # readable where people see it
    store.fail_input("x/" + name, "/failed/" + name, "h2", 1, f"cannot read {name}")
    assert [i.path for i in store.refused_inputs()] == ["/failed/" + name]


def test_a_state_file_of_the_previous_schema_is_migrated(tmp_path):
    import sqlite3
    path = tmp_path / "old.sqlite"
    from nstd.store import SCHEMA
    old = (SCHEMA.replace("job_key TEXT NOT NULL,", "job_key TEXT NOT NULL UNIQUE,")
           .replace(",\n    priority INTEGER NOT NULL DEFAULT 0,\n    dispatch TEXT,\n    UNIQUE (input_id, job_key)",
                    "")
           .replace("CREATE INDEX IF NOT EXISTS jobs_key ON jobs (job_key, state);", "")
           .replace("CREATE INDEX IF NOT EXISTS jobs_order ON jobs (state, priority DESC, id);", ""))
    old = old[:old.index("CREATE TABLE IF NOT EXISTS settings")] + old[old.index("CREATE INDEX"):]
    assert "priority" not in old and "dispatch" not in old and "settings" not in old and "UNIQUE," in old
    db = sqlite3.connect(path)
    db.executescript(old)
    db.execute("INSERT INTO inputs (relpath, path, sha256, size, created, updated) VALUES ('a', '/a', 'h', 1, 0, 0)")
    db.execute("INSERT INTO jobs (input_id, job_key, rule, style, spec, created, updated) "
               "VALUES (1, 'k1', 'r', 's', '{}', 0, 0)")
    db.commit()
    db.close()
    store = Store(path)
    assert store.job(1).key == "k1"
    _, new, _ = store.add_input("b", "/b", "h", 1, [job("k1")])  # the same key, another input
    assert new == [2]
    store.close()


def test_a_full_or_broken_state_file_is_a_typed_error(store):
    from nstd.store import StoreUnavailable
    store.db.connection.execute("PRAGMA query_only=1")
    with pytest.raises(StoreUnavailable, match="state file unavailable"):
        store.add_input("a.jpg", "/in/a.jpg", "h", 1, [job()])


def test_a_deleted_state_file_is_noticed(tmp_path, store):
    store.lock()
    assert store.still_ours()
    (tmp_path / "state.sqlite").unlink()
    assert not store.still_ours()


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
    with pytest.raises(DamagedStateFile, match="damaged"):
        Store(bad)


def test_readonly_needs_an_existing_file(tmp_path):
    with pytest.raises(StateError, match="no state file"):
        Store(tmp_path / "none.sqlite", readonly=True)


def test_higher_priority_runs_first_and_first_come_within_a_priority(store):
    ids = {}
    for name, priority in (("a", 0), ("b", 5), ("c", 0), ("d", 5)):
        _, (ids[name],), _ = store.add_input(f"{name}.jpg", f"/in/{name}.jpg", name, 1,
                                            [(f"k{name}", "r", "s", {}, priority)])
    assert [j.input_relpath for j in store.queue()] == ["b.jpg", "d.jpg", "a.jpg", "c.jpg"]
    assert store.set_priority(ids["c"], 9)
    assert [store.claim_next().input_relpath for _ in range(4)] == ["c.jpg", "b.jpg", "d.jpg", "a.jpg"]


def test_pause_survives_a_new_connection_and_resume_clears_it(tmp_path, store):
    assert store.paused() is None
    store.pause("nstd pause")
    other = Store(tmp_path / "state.sqlite")
    assert other.paused()["why"] == "nstd pause"
    assert other.resume() and store.paused() is None and not other.resume()
    other.close()


def test_once_paused_from_another_connection_no_claim_succeeds_but_a_machine_probe_does(tmp_path, store):
    store.add_input("a.jpg", "/in/a.jpg", "sha-a", 1, [job("ka")])
    other = Store(tmp_path / "state.sqlite")
    other.pause("nstd pause")                          # `nstd pause` from a shell, a moment before the claim
    assert store.claim_next() is None
    other.pause("the machine fails", machine_fault=True, probe_at=None)
    assert store.claim_next().input_relpath == "a.jpg"  # the probe job: nstd.work.faults decides
    other.close()


def test_a_state_file_of_the_previous_release_is_readable_before_the_daemon_migrates_it(tmp_path):
    """`nstd status` and `nstd web` open the state file without migrating it (only the daemon does)."""
    import sqlite3

    from nstd.core.jobs import JobState
    from nstd.store import Store
    path = tmp_path / "state.sqlite"
    store = Store(path)
    store.add_input("a.png", "/in/a.png", "h", 1, [("k", "r", "s", {"images": [], "params": {}, "output_ext": "png"})])
    store.close()
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE jobs DROP COLUMN dispatch")  # as the previous release left it
    db.commit()
    db.close()
    reader = Store(path, readonly=True)
    assert [j.state for j in reader.queue()] == [JobState.QUEUED]
    reader.close()
    migrated = Store(path)
    assert migrated.queue()[0].dispatch is None
    migrated.close()


def test_a_backup_while_the_daemon_writes_is_whole_and_never_overwrites(tmp_path):
    """SQLite's online backup of a live WAL state file: the copy holds every committed row, passes
    its integrity check and opens as a state file; an existing destination is refused."""
    import threading

    from nstd.core.errors import NstdError
    from nstd.store.backup import backup_state
    live = Store(tmp_path / "state.sqlite")
    live.lock()
    stop = threading.Event()
    written = []

    def writer():  # the daemon's writes go on during the backup (its own connection)
        w = Store(tmp_path / "state.sqlite")
        i = 0
        while not stop.is_set() and i < 400:
            w.add_input(f"p{i}.png", f"/in/p{i}.png", f"{i:064x}", 1, [(f"k{i}", "r", "s", {})])
            written.append(i)
            i += 1
        w.close()

    (tmp_path / "backups").mkdir()
    t = threading.Thread(target=writer)
    t.start()
    from conftest import wait_for
    wait_for(lambda: len(written) >= 50 or not t.is_alive(), 30, what="the writer under way")
    copy, jobs = backup_state(tmp_path / "state.sqlite", tmp_path / "backups")
    stop.set()
    t.join(30)
    assert copy.parent == tmp_path / "backups" and copy.name.startswith("nstd-state-")
    assert jobs >= 50 and not list((tmp_path / "backups").glob(".nstd-tmp-*"))
    restored = Store(copy)
    assert len(restored.jobs_of(restored.input_named("p0.png").id)) == 1
    restored.close()
    with pytest.raises(NstdError, match="never overwrites"):
        backup_state(tmp_path / "state.sqlite", copy)
    live.close()
