"""A validated config model -> the resolved `Config`: absolute folders, rules with their merged
parameters, and the checks a schema cannot make (style files exist, rules name known styles, merged
parameters are runnable), in the same `key.path: problem` format."""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from pydantic import BaseModel

from nstd.core.confine import confine_to
from nstd.core.errors import ConfigError, InputError
from nstd.core.fileids import locate
from nstd.core.images import image_size
from nstd.core.jobs import JobSpec, StyleRef, param_fields
from nstd.engine import EngineError, EngineOptions, params_from

from .folders import layout_problems
from .hours import ActiveHours
from .schema import (ConfigModel, MetricsModel, NotifyModel, StyleImageModel, StyleModel, WatchModel, WebModel,
                     WorkerModel)


@dataclass(frozen=True)
class Rule:
    name: str
    patterns: tuple[str, ...]
    jobs: tuple[JobSpec, ...]


@dataclass(frozen=True)
class Config:
    path: Path
    inbox: Path
    outbox: Path
    archive: Path
    failed: Path
    state: Path
    after_success: str
    rules: tuple[Rule, ...]
    ignore: tuple[str, ...]
    watch: WatchModel
    worker: WorkerModel
    metrics: MetricsModel = MetricsModel()
    notify: NotifyModel = NotifyModel()
    web: WebModel = WebModel()
    style_images: dict = dataclasses.field(default_factory=dict)  # every named style, used or not

    def __post_init__(self):
        # Every process that knows its folders keeps its writes, moves and deletes beneath them.
        confine_to(self.inbox, self.outbox, self.archive, self.failed)

    @property
    def engine_options(self) -> EngineOptions:
        return EngineOptions(**{f.name: getattr(self.worker, f.name)
                                for f in param_fields((EngineOptions,))})

    @property
    def active_hours(self) -> Optional[ActiveHours]:
        return ActiveHours.parse(self.worker.active_hours) if self.worker.active_hours else None

    @property
    def input_folders(self) -> tuple[Path, Path, Path]:
        """Where a photo can lie: every open, move and delete of one starts from one of these."""
        return self.inbox, self.archive, self.failed

    @property
    def roles(self) -> dict[str, str]:
        """Each folder by its role, the config's own folder (where styles usually lie) included: what
        the state file records, to follow them when they move."""
        return {"inbox": str(self.inbox), "outbox": str(self.outbox), "archive": str(self.archive),
                "failed": str(self.failed), "config": str(self.path.parent)}

    def input_root(self, path: Path | str) -> Optional[Path]:
        """The input folder `path` lies in (the deepest, were they nested); None outside them all."""
        try:
            return locate(path, self.input_folders)[0]
        except OSError:
            return None

    @property
    def styles(self) -> dict[str, tuple[StyleRef, ...]]:
        return {job.style: job.images for rule in self.rules for job in rule.jobs}


def _style_image_problems(key: str, path: Path, max_pixels: int) -> list[str]:
    if not path.is_file():
        return [f"{key}: style image not found: {path}"]
    try:
        image_size(path, max_pixels)
    except InputError as e:
        return [f"{key}: style image unusable: {e.cause} ({path})"]
    return []


def unknown_style(rule: int, name: str, known: list[str]) -> str:
    near = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {near[0]!r}?)" if near else f" (known: {', '.join(known)})"
    return f"rules.{rule}.style: unknown style {name!r}{hint}"


def unknown_styles_in(raw: dict) -> list[str]:
    """Rules naming styles the file does not define, read from the raw YAML: reported beside a
    schema error elsewhere in the file, so one `nstd check` shows every problem."""
    styles, rules = raw.get("styles"), raw.get("rules")
    if not isinstance(styles, dict) or not isinstance(rules, list):
        return []
    problems = []
    for i, rule in enumerate(rules):
        names = rule.get("style") if isinstance(rule, dict) else None
        for name in [names] if isinstance(names, str) else names if isinstance(names, list) else []:
            if isinstance(name, str) and name not in styles:
                problems.append(unknown_style(i, name, [str(k) for k in styles]))
    return problems


def _given(model: BaseModel) -> dict:
    return {k: v for k, v in model.model_dump(exclude_none=True).items()}


def resolve(model: ConfigModel, path: Path, check_images: bool = True) -> Config:
    base = path.parent
    problems: list[str] = []

    def where(value: Optional[str], default: str) -> Path:
        return (base / Path(value or default).expanduser()).resolve()

    styles: dict[str, tuple[tuple[StyleRef, ...], dict]] = {}
    for name, spec in model.styles.items():
        spec = StyleModel(images=[spec]) if isinstance(spec, str) else spec
        refs = []
        for i, img in enumerate(spec.images):
            img = StyleImageModel(path=img) if isinstance(img, str) else img
            p = where(img.path, img.path)
            key = f"styles.{name}" if isinstance(model.styles[name], str) else f"styles.{name}.images.{i}"
            if check_images:
                problems += _style_image_problems(key, p, model.worker.max_pixels)
            refs.append(StyleRef(str(p), img.weight))
        styles[name] = (tuple(refs), _given(spec.params))

    defaults = _given(model.defaults)
    rules = []
    for i, rule in enumerate(model.rules):
        names = [rule.style] if isinstance(rule.style, str) else list(rule.style)
        jobs = []
        for name in names:
            if name not in styles:
                problems.append(unknown_style(i, name, list(styles)))
                continue
            refs, style_params = styles[name]
            merged = {**defaults, **style_params, **_given(rule.params)}
            try:
                params = params_from(merged.pop("preset", None), **merged)
            except EngineError as e:
                problems.append(f"rules.{i}.params.{e.subject}: {e.cause}")
                continue
            if params.init == "image":
                problems.append(f"rules.{i}.params.init: 'image' needs an image to start from, which only "
                                "`nstd stylize --init-image` gives; use content or noise")
                continue
            rule_name = rule.name or (name if len(names) == 1 else "+".join(names))
            jobs.append(JobSpec(style=name, images=refs, params=params,
                                rule=rule_name, output_ext=rule.output, priority=rule.priority))
        patterns = (rule.match,) if isinstance(rule.match, str) else tuple(rule.match)
        rules.append(Rule(name=rule.name or f"rule{i}", patterns=patterns, jobs=tuple(jobs)))

    folders = {"inbox": where(model.inbox, model.inbox), "outbox": where(model.outbox, model.outbox),
               "archive": where(model.archive, "archive"), "failed": where(model.failed, "failed")}
    state = where(model.state, ".nstd/state.sqlite")
    problems += layout_problems(folders, state, styles)
    if problems:
        raise ConfigError(str(path), problems)
    return Config(
        path=path, **folders, state=state, after_success=model.after_success,
        rules=tuple(rules), ignore=tuple(model.ignore), watch=model.watch, worker=model.worker,
        metrics=model.metrics, notify=model.notify, web=model.web,
        style_images={n: refs for n, (refs, _) in styles.items()},
    )
