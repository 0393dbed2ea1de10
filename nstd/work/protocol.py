"""What the daemon and its worker say to each other over their pipe: typed, pickled messages.

A job order carries everything the worker needs and nothing it must look up; the worker answers
with one of the result messages. Nothing here imports torch, the store or the config stack.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional


@dataclass(frozen=True)
class JobOrder:
    id: int
    key: str                     # the painting's identity: content, styles, parameters
    input: str                   # the photo's path now
    relpath: str                 # its name in the inbox
    sha256: str
    rule: str
    style: str
    images: tuple[dict, ...]     # {"path", "weight"} per style image
    params: dict
    output: str                  # where the result goes
    outbox: str
    preview_every: int = 0
    root: str = ""               # the configured folder the photo lies in: opened from it, no link followed
    timeout_s: float = 0.0       # worker.job_timeout_minutes, enforced where the job runs; 0: none


PAST_TIME_LIMIT = "the job ran past worker.job_timeout_minutes"
CANNOT_WRITE = "cannot write the results to "   # a Failed that is the outbox's, not the job's


def past_time_limit(seconds: float) -> str:
    """Why a job was stopped at its time limit: the operator's choice, neither the photo's nor the machine's."""
    return f"{PAST_TIME_LIMIT} ({seconds / 60:g})"


# -- daemon -> worker ----------------------------------------------------------------------
@dataclass(frozen=True)
class Run:
    order: JobOrder


@dataclass(frozen=True)
class Ping:
    """Asked while idle: a stopped or hung worker does not answer."""


@dataclass(frozen=True)
class Stop:
    pass


# -- worker -> daemon ----------------------------------------------------------------------
@dataclass(frozen=True)
class Ready:
    info: dict


@dataclass(frozen=True)
class BootError:
    cause: str


@dataclass(frozen=True)
class Pong:
    pass


@dataclass(frozen=True)
class Progress:
    job_id: int
    progress: dict
    key: str = ""                    # the painting's key, from a worker host: applied only to that painting


@dataclass(frozen=True)
class Done:
    job_id: int
    outputs: dict
    key: str = ""


@dataclass(frozen=True)
class Failed:
    job_id: int
    error: str
    permanent: bool                  # the job itself cannot succeed: no retry
    environmental: bool = False      # the outbox, not the job: pause, and the attempt does not count
    details: Optional[dict] = field(default=None, compare=False)
    key: str = ""
    host: str = ""                   # the worker host it failed on: what counts against that host


WorkerMessage = Ready | BootError | Pong | Progress | Done | Failed
