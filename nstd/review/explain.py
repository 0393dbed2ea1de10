"""`nstd rules PATH`: the rules' verdict on a photo, as a person reads it (a dry run: nothing moves)."""

from __future__ import annotations

from nstd.config import Config
from nstd.core.humane import plural
from nstd.core.jobs import job_key
from nstd.core.names import shown
from nstd.engine import TransferParams
from nstd.intake.rules import Explanation
from nstd.outbox.files import output_path


def changed_params(params: TransferParams) -> str:
    """The parameters that differ from the defaults, `key value` each; 'the defaults' if none."""
    defaults = TransferParams().as_dict()
    changed = [f"{k} {_value(v)}" for k, v in params.as_dict().items() if v != defaults[k]]
    return ", ".join(changed) or "the defaults"


def _value(v) -> str:
    return ",".join(map(str, v)) if isinstance(v, (tuple, list)) else str(v)


def render_explanation(config: Config, e: Explanation) -> str:
    lines = [f"{shown(e.relpath)}:"]
    if e.jobs:
        first = next(i for i, _, said in e.verdicts if said.startswith("takes"))
        lines[0] += f" rules.{first} takes it: {plural(len(e.jobs), 'painting')}"
        for job in e.jobs:
            out = output_path(config.outbox, job.rule, e.relpath, job.style, job.output_ext, job_key("", job))
            lines.append(f"  {job.style} ({', '.join(r.path for r in job.images)}): {changed_params(job.params)}"
                         + (f", priority {job.priority}" if job.priority else ""))
            lines.append(f"    -> {out}")
    else:
        lines[0] += f" not painted: {e.refusal}"
    for i, name, said in e.verdicts:  # a rule's own name, where it was given one
        lines.append(f"  rules.{i}" + ("" if name == f"rule{i}" else f" ({name})") + f": {said}")
    return "\n".join(lines)
