"""The persistent queue: one SQLite file (WAL) holding every input and every job.

An input is a file that arrived in the inbox (its path relative to the inbox and its SHA-256);
a job is one style applied to one input, so every file dropped gets its own job and its own
result. A job's key hashes the content, the style images and the parameters: jobs that share a key
(the same photo dropped under two names) are painted once and the result delivered to each.

Names are stored as their exact file-system bytes (`CAST(? AS TEXT)` of the bytes, read back with
surrogateescape), so a name that is not UTF-8 round-trips instead of crashing the store. Any
SQLite failure (disk full, I/O error, file removed) surfaces as `StoreUnavailable`, which the
daemon answers by pausing, never by dying mid-step.

Only the daemon writes jobs' states, from its main thread; `nstd status` reads and `nstd retry`
writes from other processes, which WAL and a busy timeout make safe. A claim counts only if its
UPDATE changed exactly one row.
"""

from .inputs import Inputs
from .presence import Presence
from .queue import MAX_INTERRUPTIONS, JobQueue
from .records import INPUT_OPEN, Input, Job
from .relocation import Relocation
from .reports import Reports
from .results import Results
from .schema import SCHEMA
from .statefile import DamagedStateFile, StateDiskUnwritable, StateFile, StoreUnavailable, set_aside, take_lock


class Store(JobQueue, Inputs, Results, Reports, Presence, Relocation):
    """The state file with every question nstd asks of it; each part is its own class and module."""


__all__ = ["DamagedStateFile", "INPUT_OPEN", "MAX_INTERRUPTIONS", "SCHEMA", "Input", "Inputs", "Job", "JobQueue",
           "Presence", "Reports",
           "Results", "StateDiskUnwritable", "StateFile", "Store", "StoreUnavailable", "set_aside", "take_lock"]
