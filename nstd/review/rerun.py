"""`nstd rerun` and `nstd retry`: paint a photo again, for the command line and the web app alike.

Rerun paints an archived (or failed) photo again, with other styles or parameters.

The photo stays where it is; new jobs are recorded for it with the changed settings, and a running
daemon paints them. Their results sit beside the earlier ones under names of their own (the
earlier result's loss log names another job key), and the photo is not moved again afterwards.
"""

from __future__ import annotations

import difflib

from pathlib import Path

import pydantic
import yaml

from nstd.config import Config, ParamsModel, problem_lines
from nstd.core.errors import ConfigError, NstdError
from nstd.core.fileids import file_sha256
from nstd.core.jobs import JobSpec, JobState, job_key
from nstd.core.names import shown
from nstd.engine import EngineError, params_from
from nstd.outbox.files import return_to_inbox
from nstd.store import Input, Job, Store


def parse_settings(pairs: list[str]) -> dict:
    """`key=value` pairs as typed parameters (YAML scalars: 80, 1e6, true, [a, b]), validated by key."""
    given = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError("--set", [f"{pair!r}: expected key=value, e.g. style_weight=80"])
        try:
            given[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:  # a tag (!!python/...), an unclosed bracket: not a value
            raise ConfigError("--set", [f"{key.strip()}: {value[:80]!r} is not a plain value"]) from None
    known = list(ParamsModel.model_fields)
    problems = []
    for key in [k for k in given if k not in known]:
        near = difflib.get_close_matches(key, known, n=1)
        problems.append(f"{key}: unknown setting" + (f" (did you mean {near[0]!r}?)" if near else
                                                     " (any `nstd stylize` option with _ for -)"))
    try:  # the model's values, not the raw ones: "nan" typed in a form is the number NaN here
        model = ParamsModel.model_validate({k: v for k, v in given.items() if k in known})
    except pydantic.ValidationError as e:
        problems += problem_lines(e.errors(), ParamsModel)
    if problems:
        raise ConfigError("--set", problems)
    return {k: getattr(model, k) for k in given}


def rerun(config: Config, store: Store, name: str, styles: list[str], settings: dict) -> list[int]:
    """Queue the photo `name` (its inbox name, or the path of its archived or failed file) again."""
    inp = store.input_named(name) or store.input_at(str(Path(name).resolve()))
    if inp is None:
        raise NstdError(name, "no photo of that name or path in the state file (see `nstd status`)")
    return rerun_input(config, store, inp, styles, settings)


def rerun_input(config: Config, store: Store, inp: Input, styles: list[str], settings: dict,
                from_job: Job | None = None) -> list[int]:
    """Queue this recorded photo again with these styles (default: its earlier ones) and settings,
    starting from the parameters of `from_job` (the card a person re-runs), else its newest job."""
    name = inp.relpath
    path = Path(inp.path)
    if file_sha256(path, config.input_root(path)) != inp.sha256:
        raise NstdError(str(path), "the photo is no longer there (or was changed) since it was painted")
    earlier = store.jobs_of(inp.id)
    if not earlier and not styles:
        raise NstdError(name, "it was refused before any job; put it in the inbox again, or give --style")
    base = from_job or earlier[-1]
    if "style_strength" in settings and "style_weight" not in settings:
        settings = {**settings, "style_weight": None}  # a strength asked for chooses the weight, not the old one
    specs = []
    for style in styles or list(dict.fromkeys(j.style for j in earlier)):
        if style not in config.style_images:
            raise NstdError(name, f"unknown style {style!r}; known: {', '.join(config.style_images)}")
        model = base if from_job else next((j for j in reversed(earlier) if j.style == style), base)
        params = {k: tuple(v) if isinstance(v, list) else v for k, v in model.spec["params"].items()}
        try:
            merged = params_from(None, **{**params, **settings})
        except (EngineError, TypeError) as e:  # a value out of range: a usage error, like an unknown key
            raise ConfigError("--set", [str(e)]) from None
        specs.append((JobSpec(style=style, images=config.style_images[style], params=merged, rule=model.rule,
                              output_ext=model.spec.get("output_ext", "png"), priority=model.priority), model.id))
    # What the card says of a re-run: which painting it started from and what was changed.
    changed = {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()
               if k != "style_weight" or v is not None}
    jobs = [(job_key(inp.sha256, s), s.rule, s.style, {**s.as_stored(), "rerun_of": origin, "changed": changed},
             s.priority) for s, origin in specs]
    _, new, _ = store.add_input(inp.relpath, str(path), inp.sha256, path.stat().st_size, jobs)
    return new


def retry(config: Config, store: Store, job_ids: list[int] | None = None,
          input_ids: list[int] | None = None) -> tuple[int, int, list[str]]:
    """Failed jobs back to the queue, and inputs refused at intake back into the inbox.

    No ids: every failed job and every refused input. Returns (jobs queued, inputs returned, problems).
    """
    problems = [p for p in map(lambda j: _not_retryable(store, j), job_ids or []) if p]
    queued = store.retry(job_ids) if job_ids or not input_ids else 0
    returned = 0
    refused = [] if job_ids and not input_ids else store.refused_inputs()
    for inp in refused:
        if input_ids and inp.id not in input_ids:
            continue
        try:
            dest = return_to_inbox(Path(inp.path), config.inbox, inp.relpath)
        except OSError as e:
            problems.append(f"{inp.path}: not moved back to the inbox: {e.strerror or e}")
            continue
        store.mark_returned(inp.id, str(dest))
        returned += 1
    return queued, returned, problems


def _not_retryable(store: Store, job_id: int) -> str | None:
    job = store.find_job(job_id)
    if job is None:
        return f"job {job_id}: no such job (`nstd history` lists them)"
    if job.state is JobState.FAILED:
        return None
    hint = (f"; `nstd rerun {shown(job.input_relpath)}` paints it again" if job.state is JobState.DONE else "")
    return f"job {job_id} is {job.state.value}, not failed: nothing to retry{hint}"


__all__ = ["parse_settings", "rerun", "rerun_input", "retry"]
