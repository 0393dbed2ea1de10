"""Errors raised by the style-transfer engine.

    EngineError
    ├── WeightsError      the VGG-19 weights cannot be found, downloaded or decoded
    ├── DeviceError       the requested device does not exist on this machine
    └── ParameterError    a parameter combination the engine cannot run

The engine knows nothing of the rest of nstd, so its errors are their own small tree; callers
wrap or report them. Each carries the thing it is about (a path, a device name, a field) and a cause.
"""

from __future__ import annotations


class EngineError(Exception):
    def __init__(self, subject: str, cause: str):
        super().__init__(f"{subject}: {cause}")
        self.subject = subject
        self.cause = cause


class WeightsError(EngineError):
    pass


class DeviceError(EngineError):
    pass


class ParameterError(EngineError):
    pass
