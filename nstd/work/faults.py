"""Telling a broken machine from a bad photo.

A photo's own fault (not an image, a parameter the engine refuses) fails its job for good at once.
Everything else (a CUDA or driver error, a CPU backend that cannot run, out of memory, a worker that
dies or stalls) may be the machine's: one such failure retries the job *behind* the other photos,
so the next attempt is on another photo; when that one fails the same way, the machine is at fault.
Then dispatch pauses with that reason, both photos get their attempts back, and one probe job is
sent now and then (doubling waits, 1 to 30 minutes); its success resumes dispatch by itself, as
does `nstd resume`. A photo that fails alone, the same way every time, still ends in failed/.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from nstd.core.humane import first_line

from .protocol import PAST_TIME_LIMIT

PROBE_FIRST_SECONDS, PROBE_MAX_SECONDS = 60.0, 1800.0
# Failures that say nothing about the machine: the time limit is the operator's choice.
NOT_THE_MACHINE = (PAST_TIME_LIMIT,)
_VARYING = re.compile(r"0x[0-9a-fA-F]+|\d+(\.\d+)?")


def signature(error: str) -> str:
    """The failure with what varies from photo to photo (sizes, addresses, counts) taken out."""
    return _VARYING.sub("#", first_line(error))[:200]


@dataclass(frozen=True)
class Suspect:
    job_id: int
    input_id: int
    signature: str


class FaultWatch:
    def __init__(self):
        self.last: Optional[Suspect] = None

    def failed(self, job_id: int, input_id: int, error: str) -> Optional[Suspect]:
        """A failure that is not the photo's: the earlier suspect if this makes two photos in a row
        failing the same way (the machine is at fault), else None."""
        if error.startswith(NOT_THE_MACHINE):
            return None
        this = Suspect(job_id, input_id, signature(error))
        earlier, self.last = self.last, this
        if earlier and earlier.signature == this.signature and earlier.input_id != input_id:
            self.last = None
            return earlier
        return None

    def succeeded(self) -> None:
        self.last = None

    @property
    def retry_behind(self) -> Optional[int]:
        """The job to try after the others: its failure may be the machine's, so try another photo first."""
        return self.last.job_id if self.last else None


class MachineFaults:
    """Owns the machine-fault pause: when to declare it, the probes, and the end of it. The pause
    is the store's (`nstd status`, the gallery, `nstd resume` and the nstd_paused metric know it),
    marked `machine_fault` with when the next probe may start."""

    def __init__(self, store, log, metrics, notifications, clock=None):
        import time
        self.store, self.log, self.metrics, self.notifications = store, log, metrics, notifications
        self.clock = clock or time.time
        self.watch = FaultWatch()
        self.wait = PROBE_FIRST_SECONDS

    def active(self) -> Optional[dict]:
        pause = self.store.paused()
        return pause if pause and pause.get("machine_fault") else None

    def may_claim(self) -> bool:
        """False while the machine is suspect and no probe is due; a claim made now is the probe."""
        pause = self.active()
        if pause is None:
            return True
        if pause.get("probe_at") is None or self.clock() < pause["probe_at"]:
            return False
        self.store.pause(pause["why"], machine_fault=True, probe_at=None)  # one probe at a time
        self.log.info("probing the machine with one job", why=pause["why"])
        return True

    def failed(self, job, error: str) -> bool:
        """A failure that is not the photo's; True if it was the machine's (the job is released
        without using an attempt, and dispatch pauses)."""
        if self.active() is not None:  # a probe failed: still broken
            self._pause(self.active()["why"], [job.id], probe_failed=True)
            return True
        earlier = self.watch.failed(job.id, job.input_id, error)
        if earlier is None:
            return False
        why = (f"the machine fails different photos the same way ({first_line(error)}); no photo is blamed: "
               "they wait, and a probe job every while resumes painting once the machine is well "
               "(or `nstd resume`)")
        self._pause(why, [earlier.job_id, job.id])
        return True

    def declare(self, why: str, job_id: int) -> None:
        """A fault known for the machine's from the start (the inbox unmounted): pause at once, or,
        if this was the probe, wait longer."""
        self._pause(why, [job_id], probe_failed=self.active() is not None)

    def _pause(self, why: str, job_ids: list[int], probe_failed: bool = False) -> None:
        for job_id in job_ids:
            self.store.give_back(job_id)
        if probe_failed:
            self.wait = min(self.wait * 2, PROBE_MAX_SECONDS)
        else:
            self.wait = PROBE_FIRST_SECONDS
            self.notifications.machine_fault(why)
        self.store.pause(why, machine_fault=True, probe_at=self.clock() + self.wait)
        self.metrics.machine_fault.set(1)
        self.log.error("machine fault: dispatch paused, photos keep their attempts", why=why, jobs=job_ids,
                       probe_in_s=self.wait)

    def succeeded(self) -> None:
        self.watch.succeeded()
        if self.active() is not None:
            self.store.resume()
            self.log.info("the probe job succeeded: the machine is well, painting resumes")
        self.metrics.machine_fault.set(0)
        self.wait = PROBE_FIRST_SECONDS
