"""The errors of nstd outside the engine (which has its own tree in `nstd.engine.errors`).

    NstdError                 file + cause; exit code 1
    ├── InputError            an input image cannot be used (unreadable, truncated, too large,
    │                         not an image, a symlink out of the inbox, ...)
    ├── ConfigError           a config file is invalid; carries every problem with its key path (2)
    ├── UsageError            a command's arguments are wrong: a flag out of range, a bad --set (2)
    ├── StateError            the state file is locked by another daemon or unreadable (4)
    └── WorkerStartError      the worker cannot start at all: weights, device (3)

Each carries the file it is about and the cause, so a log line or an `.error.json` can say both.
"""

from __future__ import annotations


class NstdError(Exception):
    exit_code = 1

    def __init__(self, file: str, cause: str):
        super().__init__(f"{file}: {cause}")
        self.file = str(file)
        self.cause = cause

    def as_dict(self) -> dict:
        return {"error": type(self).__name__, "file": self.file, "cause": self.cause}


class InputError(NstdError):
    pass


class ConfigError(NstdError):
    exit_code = 2

    def __init__(self, file: str, problems: list[str]):
        self.problems = list(problems)
        super().__init__(file, "; ".join(self.problems))

    def __str__(self) -> str:
        return f"{self.file}: invalid config\n" + "\n".join(f"  {p}" for p in self.problems)


class UsageError(NstdError):
    exit_code = 2


class StateError(NstdError):
    exit_code = 4


class WorkerStartError(NstdError):
    exit_code = 3
