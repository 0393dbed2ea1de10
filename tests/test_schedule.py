"""When new jobs may start: pause and active hours, with a fake wall clock."""

from __future__ import annotations

import datetime as dt

import pytest

from nstd.config import ActiveHours
from nstd.ops.schedule import DispatchGate


@pytest.mark.parametrize("span, inside, outside", [
    ("19:00-07:00", ["19:00", "23:59", "00:00", "06:59"], ["07:00", "12:00", "18:59"]),
    ("09:30-17:00", ["09:30", "16:59"], ["09:29", "17:00", "00:00"]),
])
def test_active_hours_may_cross_midnight(span, inside, outside):
    hours = ActiveHours.parse(span)
    t = lambda s: dt.time.fromisoformat(s)
    assert all(hours.contains(t(s)) for s in inside) and not any(hours.contains(t(s)) for s in outside)
    assert str(hours) == span


@pytest.mark.parametrize("bad", ["19-07", "25:00-07:00", "07:00-07:00", "evening"])
def test_bad_spans_are_refused(bad):
    with pytest.raises(ValueError):
        ActiveHours.parse(bad)


class Log:
    """Stand-in logger."""

    def __init__(self):
        self.events = []

    def info(self, event, **kw):
        self.events.append((event, kw))


def test_the_gate_closes_for_a_pause_and_outside_the_hours_and_says_so_once():
    state = {"paused": None, "wall": dt.datetime(2026, 11, 24, 20, 0)}
    log = Log()
    gate = DispatchGate(lambda: state["paused"], ActiveHours.parse("19:00-07:00"), log, wall=lambda: state["wall"])
    assert gate.closed(0.0) is None
    state["paused"] = {"since": 0, "why": "nstd pause"}
    assert gate.closed(0.5) is None                     # looked at once a second, not every tick
    assert gate.closed(1.0).startswith("paused")
    state["paused"] = None
    state["wall"] = dt.datetime(2026, 11, 25, 9, 0)
    assert gate.closed(2.0) == "outside worker.active_hours (19:00-07:00)"
    assert gate.closed(3.0) == "outside worker.active_hours (19:00-07:00)"
    state["wall"] = dt.datetime(2026, 11, 25, 19, 0)
    assert gate.closed(4.0) is None
    assert [e for e, _ in log.events] == ["no new jobs start", "no new jobs start", "jobs start again"]


def test_a_machine_fault_pause_opens_only_when_a_probe_is_due():
    wall = dt.datetime(2026, 11, 24, 20, 0)
    state = {"paused": {"since": 0, "why": "the machine fails", "machine_fault": True,
                        "probe_at": wall.timestamp() + 60}}
    now = {"wall": wall}
    gate = DispatchGate(lambda: state["paused"], None, Log(), wall=lambda: now["wall"])
    assert gate.closed(0.0).startswith("paused (the machine fails)")
    now["wall"] = wall + dt.timedelta(seconds=61)
    assert gate.closed(1.0) is None                      # nstd.work.faults lets exactly one job through
    state["paused"] = {**state["paused"], "probe_at": None}  # the probe is out
    assert gate.closed(2.0).startswith("paused")
