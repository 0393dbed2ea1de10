"""Job types shared by the daemon's parts, and the parameter fields the CLI and YAML expose.

Parameter defaults live in `nstd.engine.params`; this module only describes those fields so that
`cli` (flags) and `config` (YAML) derive from the same source.
"""

from __future__ import annotations

import dataclasses
import enum
import typing
from dataclasses import dataclass
from typing import Any

from .engine.params import EngineOptions, TransferParams


class JobState(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class ParamField:
    name: str
    type: Any
    default: Any
    help: str
    owner: type


def param_fields(owners: tuple[type, ...] = (TransferParams, EngineOptions)) -> list[ParamField]:
    out = []
    for owner in owners:
        hints = typing.get_type_hints(owner)
        for f in dataclasses.fields(owner):
            out.append(ParamField(f.name, hints[f.name], f.default, f.metadata.get("help", ""), owner))
    return out


@dataclass(frozen=True)
class StyleRef:
    """One image of a named style, with its blend weight."""
    path: str
    weight: float = 1.0


@dataclass(frozen=True)
class JobSpec:
    """What a rule asks for one input: one named style (maybe a blend) with merged parameters."""
    style: str
    images: tuple[StyleRef, ...]
    params: TransferParams
    rule: str
    output_ext: str = "png"
