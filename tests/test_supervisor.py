"""The supervisor's decisions, in-process: a real store and folders, a fake clock, a stand-in worker.

`StandInWorker` is a stand-in for `nstd.worker.WorkerProcess` (no process, no torch): the test
scripts what it says and when it dies, so that each decision (restart backoff, boot errors,
stalls, dispatch pauses, restarts for new settings, grace on SIGTERM) can be driven step by step
with `now` given. The real worker is exercised end to end in test_daemon.py and test_promises.py.
"""

from __future__ import annotations

import hashlib
import json
import signal

import pytest

from conftest import png, wait_for, write_config
from nstd.config import load_config
from nstd.core.errors import WorkerStartError
from nstd.core.jobs import job_key
from nstd.work.protocol import BootError, Done, Failed, Pong, Progress, Ready
from nstd.store import Store
from nstd.work.supervisor import WorkerSupervisor


class StandInWorker:
    """Stand-in for WorkerProcess: scripted messages, scripted death."""

    def __init__(self, boot=None):
        self.pid, self.ready, self.info = 4242, False, {}
        self.job_id = self.job_started = self.death_cause = self.exitcode = None
        self.living, self.sent, self.pings, self.stopped = True, [], 0, False
        self.outbox = [boot or Ready({"device": "stand-in", "pid": 4242})]

    def alive(self):
        return self.living

    def send_job(self, order):
        self.job_id = order.id
        self.sent.append(order)

    def messages(self, timeout=0.0):
        out, self.outbox = self.outbox, []
        return out

    def say(self, *messages):
        self.outbox.extend(messages)

    def ping(self):
        self.pings += 1

    def die(self, code):
        self.living, self.exitcode = False, code

    def terminate_now(self):
        self.die(-9)

    def kill(self):
        self.living = False

    def stop(self):
        self.stopped = True
        self.die(0)


class Log:
    """Stand-in logger: keeps (event, fields) for the test to read."""

    def __init__(self):
        self.events = []

    def __getattr__(self, level):
        return lambda event, **kw: self.events.append((event, kw))

    def saw(self, event):
        return [kw for e, kw in self.events if e == event]


@pytest.fixture
def rig(tmp_path):
    config = load_config(write_config(tmp_path, extra="worker:\n  stall_seconds: 30\n  max_attempts: 3\n"))
    for folder in (config.inbox, config.outbox):
        folder.mkdir(parents=True, exist_ok=True)
    store = Store(config.state)
    log = Log()
    spawned = []

    def spawn(_config):
        w = StandInWorker(rig.boot)
        spawned.append(w)
        return w

    class Rig:
        boot = None

    rig = Rig()
    rig.config, rig.store, rig.log, rig.spawned = config, store, log, spawned
    rig.sup = WorkerSupervisor(config, store, log, spawn, on_change=lambda: None)

    def queue(name, seed):
        path = config.inbox / name
        path.write_bytes(png(seed))
        sha = hashlib.sha256(png(seed)).hexdigest()
        (spec,) = config.rules[0].jobs
        _, new, _ = store.add_input(name, str(path), sha, 1, [(job_key(sha, spec), spec.rule, spec.style,
                                                                 spec.as_stored())])
        return new[0]
    rig.queue = queue
    yield rig
    store.close()


def test_a_dead_worker_is_restarted_with_doubling_waits_reset_once_one_is_ready(rig):
    rig.sup.start(now=0.0, wait=True)
    rig.spawned[0].die(1)
    rig.sup.tick(now=10.0, dispatching=True)
    assert rig.log.saw("worker died")[-1]["restart_in_s"] == 1.0
    rig.sup.tick(now=10.5, dispatching=True)
    assert len(rig.spawned) == 1                          # not yet
    rig.boot = Pong()                                     # the next one dies before it is ready
    rig.sup.tick(now=11.0, dispatching=True)
    assert len(rig.spawned) == 2
    rig.spawned[1].die(1)
    rig.sup.tick(now=11.1, dispatching=True)
    assert rig.log.saw("worker died")[-1]["restart_in_s"] == 2.0
    rig.boot = None
    rig.sup.tick(now=13.1, dispatching=True)
    rig.sup.tick(now=13.2, dispatching=True)             # reads Ready: the backoff is reset
    assert rig.spawned[2].ready and rig.sup.restart.failures == 0


def test_a_worker_that_cannot_start_is_a_worker_start_error(rig):
    rig.boot = BootError("weights: /nope.pth: file not found")
    with pytest.raises(WorkerStartError, match="nope.pth"):
        rig.sup.start(now=0.0, wait=True)


def test_a_worker_that_exits_with_the_boot_code_before_it_is_ready_stops_the_daemon(rig):
    rig.boot = Pong()
    rig.sup.start(now=0.0)
    rig.spawned[0].die(3)
    with pytest.raises(WorkerStartError):
        rig.sup.tick(now=1.0, dispatching=True)


def test_an_outbox_that_cannot_be_written_pauses_dispatch_without_using_an_attempt(rig):
    first = rig.queue("a.png", 1)
    rig.sup.start(now=0.0, wait=True)
    rig.sup.tick(now=1.0, dispatching=True)
    w = rig.spawned[0]
    assert [o.id for o in w.sent] == [first]
    w.say(Failed(first, "No space left on device", permanent=False, environmental=True))
    rig.sup.tick(now=2.0, dispatching=True)
    job = rig.store.job(first)
    assert (job.state.value, job.attempts) == ("queued", 0)
    rig.sup.tick(now=2.5, dispatching=True)
    assert len(w.sent) == 1                               # paused for 1 s
    rig.sup.tick(now=3.1, dispatching=True)
    assert len(w.sent) == 2 and w.sent[1].id == first


def test_a_silent_worker_is_killed_and_its_job_retried_with_the_reason(rig):
    job = rig.queue("a.png", 1)
    rig.sup.start(now=0.0, wait=True)
    rig.sup.tick(now=1.0, dispatching=True)
    rig.spawned[0].say(Progress(job, {"done": 1, "total": 10}))
    rig.sup.tick(now=5.0, dispatching=True)
    rig.sup.tick(now=34.0, dispatching=True)              # 29 s of silence: within the limit
    assert rig.spawned[0].alive()
    rig.sup.tick(now=36.0, dispatching=True)              # 31 s: stalled
    assert "no sign of life for 31 s" in rig.log.saw("stopping the worker")[0]["cause"]
    rig.sup.tick(now=36.1, dispatching=True)
    j = rig.store.job(job)
    assert j.state.value == "queued" and "stalled" in j.error and j.attempts == 1


def test_an_idle_worker_is_pinged_and_a_pong_counts_as_life(rig):
    rig.sup.start(now=0.0, wait=True)
    for t in range(1, 100, 5):
        rig.sup.tick(now=float(t), dispatching=True)
        rig.spawned[0].say(Pong())
    assert rig.spawned[0].pings >= 10 and rig.spawned[0].alive() and rig.sup.healthy(96.0)


def test_new_worker_settings_restart_the_worker_after_its_running_job(rig):
    job = rig.queue("a.png", 1)
    rig.sup.start(now=0.0, wait=True)
    rig.sup.tick(now=1.0, dispatching=True)
    rig.sup.restart_after_job()
    rig.sup.tick(now=2.0, dispatching=True)
    assert not rig.spawned[0].stopped                     # busy: the job goes on
    rig.spawned[0].say(Done(job, {"image": "x.png"}))
    rig.sup.tick(now=3.0, dispatching=True)
    rig.sup.tick(now=3.1, dispatching=True)
    assert rig.spawned[0].stopped
    rig.sup.tick(now=3.2, dispatching=True)
    assert len(rig.spawned) == 2


def test_a_job_whose_painting_exists_for_another_name_is_delivered_not_painted(rig):
    first = rig.queue("a.png", 1)
    second = rig.queue("b.png", 1)                        # the same photo, dropped under a second name
    rig.sup.start(now=0.0, wait=True)
    rig.sup.tick(now=1.0, dispatching=True)
    order = rig.spawned[0].sent[0]
    out = rig.config.outbox / "stripes" / "a__stripes.png"
    out.write_bytes(b"painting")
    out.with_suffix(".json").write_text(json.dumps({"job_key": order.key, "input": "a.png", "job_id": first}))
    rig.spawned[0].say(Done(first, {"image": str(out), "log": str(out.with_suffix(".json"))}))
    rig.sup.tick(now=2.0, dispatching=True)
    rig.sup.tick(now=3.0, dispatching=True)
    assert len(rig.spawned[0].sent) == 1                  # nothing more to paint
    delivered = rig.config.outbox / "stripes" / "b__stripes.png"
    assert delivered.read_bytes() == b"painting" and delivered.stat().st_ino == out.stat().st_ino
    log = json.loads(delivered.with_suffix(".json").read_text())
    assert (log["input"], log["job_id"], log["delivered_from_job"]) == ("b.png", second, first)
    assert rig.store.job(second).state.value == "done"


def test_sigterm_lets_the_running_job_finish_within_the_grace_period_then_requeues_it(tmp_path):
    from nstd.daemon import Daemon

    config = write_config(tmp_path, extra="worker:\n  grace_seconds: 30\n")
    (tmp_path / "inbox").mkdir()
    clock = [0.0]
    workers = []

    def spawn(_config):
        workers.append(StandInWorker())
        return workers[-1]

    daemon = Daemon(config, clock=lambda: clock[0], spawn=spawn)
    try:
        daemon.start()
        (tmp_path / "inbox" / "a.png").write_bytes(png(1))
        def dispatched():  # the fake clock runs slower than the real one: the inspector is real
            clock[0] += 0.05
            daemon.tick()
            return workers[0].sent
        wait_for(dispatched, 60, what="the real intake to queue the photo and dispatch it")
        daemon.signals.append(signal.SIGTERM)
        clock[0] += 1
        assert daemon.tick()                              # stopping, but the job may finish
        clock[0] += 29
        assert daemon.tick()
        clock[0] += 2                                     # past the grace period
        assert not daemon.tick()
    finally:
        daemon.shutdown()
    store = Store(tmp_path / ".nstd" / "state.sqlite")
    (job,) = store.jobs_in(store.job(1).state)
    assert (job.state.value, job.attempts) == ("queued", 0)   # our stop is not the job's failed attempt
    store.close()


def test_a_result_that_cannot_be_recorded_now_is_recorded_once_the_store_is_back(rig):
    from nstd.store import StoreUnavailable
    job = rig.queue("a.png", 1)
    rig.sup.start(now=0.0, wait=True)
    rig.sup.tick(now=1.0, dispatching=True)
    rig.spawned[0].say(Done(job, {"image": "x.png"}))
    rig.store.db.connection.execute("PRAGMA query_only=1")     # as good as a full disk
    with pytest.raises(StoreUnavailable):
        rig.sup.tick(now=2.0, dispatching=True)
    rig.store.db.connection.execute("PRAGMA query_only=0")
    rig.sup.tick(now=3.0, dispatching=True)
    assert rig.store.job(job).state.value == "done" and rig.spawned[0].job_id is None


BROKEN = "RuntimeError: could not create a primitive descriptor for a convolution of 224x224"


def test_a_machine_that_fails_every_photo_pauses_dispatch_and_blames_no_photo(rig):
    wall = [1000.0]
    rig.sup.recorder.faults.clock = lambda: wall[0]
    a, b, c = rig.queue("a.png", 1), rig.queue("b.png", 2), rig.queue("c.png", 3)
    rig.sup.start(now=0.0, wait=True)
    rig.sup.tick(now=1.0, dispatching=True)
    w = rig.spawned[0]
    w.say(Failed(a, BROKEN, permanent=False))
    rig.sup.tick(now=2.0, dispatching=True)
    assert [o.id for o in w.sent] == [a, b]               # the retry waits behind another photo
    w.say(Failed(b, BROKEN.replace("224x224", "512x384"), permanent=False))  # sizes vary, the fault does not
    rig.sup.tick(now=3.0, dispatching=True)
    # Two photos failed the same way: the machine. Nobody's attempt is used, nothing dispatched.
    assert [(rig.store.job(j).state.value, rig.store.job(j).attempts) for j in (a, b, c)] == [("queued", 0)] * 3
    pause = rig.store.paused()
    assert pause["machine_fault"] and "could not create a primitive" in pause["why"] and pause["probe_at"] == 1060.0
    assert rig.sup.recorder.metrics.machine_fault._value.get() == 1
    for now in (4.0, 5.0, 6.0):
        rig.sup.tick(now=now, dispatching=True)
    assert len(w.sent) == 2
    wall[0] = 1061.0                                      # a probe is due: one job, no more
    rig.sup.tick(now=7.0, dispatching=True)
    assert len(w.sent) == 3
    w.say(Failed(w.sent[-1].id, BROKEN, permanent=False))  # still broken: longer wait, attempts kept
    rig.sup.tick(now=8.0, dispatching=True)
    assert rig.store.paused()["probe_at"] == 1061.0 + 120 and all(rig.store.job(j).attempts == 0 for j in (a, b, c))
    wall[0] = 1182.0
    rig.sup.tick(now=9.0, dispatching=True)
    probe = w.sent[-1].id
    w.say(Done(probe, {"image": str(rig.config.outbox / "x.png")}))
    rig.sup.tick(now=10.0, dispatching=True)              # well again: resumed by itself
    assert rig.store.paused() is None and rig.sup.recorder.metrics.machine_fault._value.get() == 0
    rig.sup.tick(now=11.0, dispatching=True)
    assert len(w.sent) == 5 and rig.store.counts()["failed"] == 0


def test_a_photo_that_fails_alone_still_goes_to_failed(rig):
    a, b = rig.queue("a.png", 1), rig.queue("b.png", 2)
    rig.sup.start(now=0.0, wait=True)
    rig.sup.tick(now=1.0, dispatching=True)
    w = rig.spawned[0]
    w.say(Failed(a, "ValueError: this photo trips a bug", permanent=False))
    rig.sup.tick(now=2.0, dispatching=True)
    w.say(Done(b, {"image": str(rig.config.outbox / "b.png")}))  # another photo paints fine
    for now in range(3, 12):
        rig.sup.tick(now=float(now), dispatching=True)
        if w.job_id == a:
            w.say(Failed(a, "ValueError: this photo trips a bug", permanent=False))
    assert rig.store.job(a).state.value == "failed" and rig.store.job(a).attempts == 3
    assert rig.store.paused() is None


def test_a_photos_own_faults_never_pause_the_machine(rig):
    jobs = [rig.queue(f"p{i}.png", i) for i in range(3)]
    rig.sup.start(now=0.0, wait=True)
    for i, job in enumerate(jobs):
        rig.sup.tick(now=1.0 + i, dispatching=True)
        rig.spawned[0].say(Failed(job, "p.png: not an image (cannot identify image file)", permanent=True))
    rig.sup.tick(now=9.0, dispatching=True)
    assert [rig.store.job(j).state.value for j in jobs] == ["failed"] * 3 and rig.store.paused() is None
