"""Job types shared by the daemon's parts, and the parameter fields the CLI and YAML expose.

Parameter defaults live in `nstd.engine.params`; this module only describes those fields so that
`cli` (flags) and `config` (YAML) derive from the same source.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import typing
from dataclasses import dataclass
from typing import Any

from nstd.engine.params import EngineOptions, TransferParams

from .errors import NstdError
from .fileids import style_identity

# Settings that change how a painting is reported, not the painting: not part of its identity.
NOT_IN_KEY = ("log_every",)


class JobState(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    DELETED = "deleted"  # was done; its result was deleted (by hand, `nstd delete` or the web app)
    WITHDRAWN = "withdrawn"  # its photo was renamed or removed from the inbox before it was painted


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


def literal_words(tp) -> list:
    """The words a number-or-word parameter takes besides numbers (`size: original`); none for others."""
    return [w for a in typing.get_args(tp) if typing.get_origin(a) is typing.Literal for w in typing.get_args(a)]


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
    priority: int = 0  # the queue's order, not the painting: not part of the job key

    def as_stored(self) -> dict:
        """What the store keeps and the worker needs: style images, parameters, output type."""
        return {"images": [r.__dict__ for r in self.images], "params": self.params.as_dict(),
                "output_ext": self.output_ext}


def job_key(sha256: str, spec: JobSpec) -> str:
    """Same content + same style images + same parameters + same output type = the same painting.

    A style image counts by its bytes, not its path: the nstd folder moved (`mv ~/nstd /srv/nstd`)
    paints nothing again. (Keys made before this rule named the path too; such a job keeps its key.)"""
    params = {k: v for k, v in spec.params.as_dict().items() if k not in NOT_IN_KEY}
    identity = {"input": sha256, "style": spec.style, "ext": spec.output_ext, "params": params,
                "images": [[r.weight, style_identity(r.path)] for r in spec.images]}
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=list).encode()).hexdigest()


PRIORITY_LIMIT = 1000  # higher runs first; a bound keeps a typo (or 2**63) out of the state file


def checked_priority(value: int) -> int:
    if not -PRIORITY_LIMIT <= value <= PRIORITY_LIMIT:
        raise NstdError("priority", f"{value} is out of range: from {-PRIORITY_LIMIT} to {PRIORITY_LIMIT}")
    return value


_CHANGE_WORDS = {"style_strength": "strength", "style_weight": "style weight", "content_weight": "content weight",
                 "tv_weight": "tv weight", "budget_seconds": "budget s"}


def shown_value(value) -> str:
    if isinstance(value, (list, tuple)):
        return ":".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def variant_words(spec: dict) -> str:
    """What sets a re-run apart, said wherever a job is named (the queue, the running card, the toast,
    `nstd status`, `nstd history`): 're-run of job 6: strength 0.75'; '' for a photo's first painting.
    A stronger and a lighter re-run of one photo in one style read differently before they finish."""
    origin = spec.get("rerun_of")
    if origin is None:
        return ""
    changed = ", ".join(f"{_CHANGE_WORDS.get(k, k)} {shown_value(v)}" for k, v in (spec.get("changed") or {}).items()
                        if v is not None)
    return f"re-run of job {origin}" + (f": {changed}" if changed else "")
