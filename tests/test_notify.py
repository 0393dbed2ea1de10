"""Batching of notifications, with a stand-in clock: a burst of refusals is two messages, not one
each (tests/test_operations.py sends real ones to a real local endpoint)."""

from __future__ import annotations

from nstd.ops.notify import HOLD_SECONDS, SHOWN, Batcher


def refused(i: int) -> tuple:
    return ("input_refused", "warning", f"nstd: junk{i}.jpg refused", f"junk{i}.jpg: not an image\n(host h)")


def test_a_burst_of_refusals_is_the_first_one_then_one_summary():
    b = Batcher()
    sent = b.offer(refused(0), now=0.0)
    for i in range(1, 300):
        sent += b.offer(refused(i), now=i * 0.1)
    assert [m[2] for m in sent] == ["nstd: junk0.jpg refused"]
    assert b.next_due() == HOLD_SECONDS and b.due(HOLD_SECONDS - 1) == []
    (summary,) = b.due(HOLD_SECONDS)
    assert summary[2] == "nstd: 299 more refused inputs"
    assert summary[3].splitlines()[:2] == ["junk1.jpg: not an image", "junk2.jpg: not an image"]
    assert f"... and {299 - SHOWN} more" in summary[3] and summary[3].endswith("(host h)")
    assert b.offer(refused(400), now=HOLD_SECONDS + 1) == []        # still within the hold after the summary
    assert [m[2] for m in b.due(2 * HOLD_SECONDS)] == ["nstd: 1 more refused inputs"]
    assert b.offer(refused(401), now=4 * HOLD_SECONDS) == [refused(401)]  # after a quiet spell: at once


def test_other_events_are_never_held_and_a_stop_flushes_the_held_ones():
    b = Batcher()
    b.offer(refused(0), now=0.0)
    b.offer(refused(1), now=1.0)
    assert b.offer(("queue_drained", "success", "nstd: queue empty", "..."), now=2.0)[0][2] == "nstd: queue empty"
    assert [m[2] for m in b.flush_all()] == ["nstd: 1 more refused inputs"]
