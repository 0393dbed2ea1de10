"""YAML config -> validated, resolved objects; every problem reported with its dotted key path.

pydantic does the type checking and gives key paths; this module adds what a schema cannot say
(style files exist, rules name known styles, merged parameters are runnable) in the same format.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional, Union

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field

from .engine import EngineError, EngineOptions, TransferParams, params_from
from .engine.params import PRESETS
from .errors import ConfigError, InputError
from .images import image_size
from .jobs import JobSpec, StyleRef, param_fields
from .schedule import ActiveHours


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _params_model() -> type[BaseModel]:
    """All TransferParams fields, each optional, plus `preset`: the shape of every `params:` key."""
    fields: dict = {"preset": (Optional[Literal[tuple(PRESETS)]], None)}
    for f in param_fields((TransferParams,)):
        fields[f.name] = (Optional[f.type], Field(None, description=f.help))
    return pydantic.create_model("Params", __base__=_Strict, **fields)


def _engine_model() -> type[BaseModel]:
    fields = {f.name: (f.type, Field(f.default, description=f.help))
              for f in param_fields((EngineOptions,))}
    return pydantic.create_model("EngineSettings", __base__=_Strict, **fields)


ParamsModel = _params_model()
EngineModel = _engine_model()


class StyleImageModel(_Strict):
    path: str
    weight: float = Field(1.0, gt=0)


class StyleModel(_Strict):
    images: list[Union[str, StyleImageModel]] = Field(min_length=1)
    params: ParamsModel = ParamsModel()


class RuleModel(_Strict):
    match: Union[str, list[str]]
    style: Union[str, list[str]]
    name: Optional[str] = None
    params: ParamsModel = ParamsModel()
    output: Literal["png", "jpg"] = "png"
    priority: int = Field(0, description="higher runs first; first come, first served within a priority")


class WatchModel(_Strict):
    mode: Literal["native", "polling"] = "native"
    settle_seconds: float = Field(2.0, ge=0)
    poll_seconds: float = Field(1.0, gt=0)
    rescan_minutes: float = Field(10.0, gt=0)
    decode_retries: int = Field(3, ge=0)
    max_file_mb: float = Field(1000, gt=0, description="larger files are refused before they are read")


class WorkerModel(EngineModel):
    max_attempts: int = Field(3, ge=1)
    grace_seconds: float = Field(30.0, ge=0)
    max_pixels: int = Field(50_000_000, gt=0)
    preview_every: int = Field(20, ge=0, description="write a preview of a running job every N iterations "
                               "(the gallery and the web app show it; 0: none)")
    stall_seconds: float = Field(600, gt=0, description="a worker silent this long (no progress, no "
                                 "answer to a ping) is killed; its job is retried")
    job_timeout_minutes: float = Field(0, ge=0, description="a job running longer is stopped and retried "
                                       "(0: no limit)")
    active_hours: Optional[str] = Field(None, description="start jobs only in this daily span, e.g. 19:00-07:00")
    backend: Literal["local", "redis"] = Field("local", description="local: one worker child of the daemon; "
                                               "redis: `nstd worker` hosts through Dramatiq on Redis")
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="the Redis of the redis backend")
    redis_heartbeat_seconds: float = Field(60.0, ge=1, description="a worker host silent this long is dead: its "
                                           "job goes to another (redis backend)")
    path_map: dict[str, str] = Field({}, description="on a worker host: the daemon's path prefixes and where "
                                     "they are mounted here, e.g. {/srv/nstd: /mnt/nstd}")

    @pydantic.field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"{value!r} is not a Redis URL (redis://host:6379/0, rediss://..., unix://...)")
        return value

    @pydantic.field_validator("active_hours")
    @classmethod
    def _hours(cls, value: Optional[str]) -> Optional[str]:
        if value is not None:
            ActiveHours.parse(value)
        return value


class MetricsModel(_Strict):
    listen: Optional[str] = Field(None, description="host:port for Prometheus, e.g. 127.0.0.1:9464 (off if unset)")

    @pydantic.field_validator("listen")
    @classmethod
    def _listen(cls, value: Optional[str]) -> Optional[str]:
        return value if value is None else _host_port(value, "127.0.0.1:9464")


def _host_port(value: str, example: str) -> str:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r} is not host:port, e.g. {example}")
    return value


class WebModel(_Strict):
    listen: str = Field("127.0.0.1:8040", description="host:port of `nstd web`")
    password_hash: Optional[str] = Field(None, description="from `nstd web-password`; without it the web app "
                                         "is read-only")
    allowed_hosts: list[str] = Field([], description="Host header values accepted besides localhost and the "
                                     "listen address (a LAN name, a reverse proxy's name)")

    @pydantic.field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        return _host_port(value, "127.0.0.1:8040")

    @pydantic.field_validator("password_hash")
    @classmethod
    def _hash(cls, value: Optional[str]) -> Optional[str]:
        if value is not None:
            from .web.auth import check_hash_format
            check_hash_format(value)
        return value


class NotifyModel(_Strict):
    urls: list[str] = Field([], description="apprise URLs: mailto://, json://, ntfy://, gotify://, slack://, ...")
    events: list[Literal["job_failed", "input_refused", "queue_drained", "worker_cannot_start"]] = [
        "job_failed", "input_refused", "queue_drained", "worker_cannot_start"]


class ConfigModel(_Strict):
    inbox: str
    outbox: str
    archive: Optional[str] = None
    failed: Optional[str] = None
    state: Optional[str] = None
    after_success: Literal["archive", "delete", "keep"] = "archive"
    styles: dict[str, Union[str, StyleModel]] = Field(min_length=1)
    rules: list[RuleModel] = Field(min_length=1)
    ignore: list[str] = []
    defaults: ParamsModel = ParamsModel()
    watch: WatchModel = WatchModel()
    worker: WorkerModel = WorkerModel()
    metrics: MetricsModel = MetricsModel()
    notify: NotifyModel = NotifyModel()
    web: WebModel = WebModel()


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

    @property
    def engine_options(self) -> EngineOptions:
        return EngineOptions(**{f.name: getattr(self.worker, f.name)
                                for f in param_fields((EngineOptions,))})

    @property
    def active_hours(self) -> Optional[ActiveHours]:
        return ActiveHours.parse(self.worker.active_hours) if self.worker.active_hours else None

    @property
    def styles(self) -> dict[str, tuple[StyleRef, ...]]:
        return {job.style: job.images for rule in self.rules for job in rule.jobs}


_UNION_TAGS = {"str", "list[str]", "StyleModel", "StyleImageModel", "Params"}


def _key(loc: tuple) -> str:
    # pydantic names the union branch it tried inside the location; people want the key alone.
    return ".".join(str(p) for p in loc if p not in _UNION_TAGS)


def _problems(errors: list[dict]) -> list[str]:
    keyed = [(_key(err["loc"]) or "(top)", _message(err)) for err in errors]
    keys = {k for k, _ in keyed}
    # Of a union's branches, report the one that got furthest: drop a key another one extends.
    return list(dict.fromkeys(f"{k}: {m}" for k, m in keyed
                              if not any(o.startswith(k + ".") for o in keys)))


def _given(model: BaseModel) -> dict:
    return {k: v for k, v in model.model_dump(exclude_none=True).items()}


def load_config(path: str | Path) -> Config:
    path = Path(path).expanduser().resolve()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(path), ["file not found"]) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(str(path), [f"cannot read: {e}"]) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(str(path), [f"{where}not valid YAML ({getattr(e, 'problem', None) or e})"]) from None
    if not isinstance(raw, dict):
        raise ConfigError(str(path), ["top level must be a mapping of keys such as inbox, outbox, styles, rules"])
    try:
        model = ConfigModel.model_validate(raw)
    except pydantic.ValidationError as e:
        raise ConfigError(str(path), _problems(e.errors())) from None
    return _resolve(model, path)


def _message(err: dict) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown key"
    if err["type"] == "missing":
        return "required key is missing"
    return f"{err['msg']} (got {err['input']!r})" if not isinstance(err["input"], dict) else err["msg"]


def _resolve(model: ConfigModel, path: Path) -> Config:
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
            if not p.is_file():
                problems.append(f"{key}: style image not found: {p}")
            else:
                try:
                    image_size(p, model.worker.max_pixels)
                except InputError as e:
                    problems.append(f"{key}: style image unusable: {e.cause} ({p})")
            refs.append(StyleRef(str(p), img.weight))
        styles[name] = (tuple(refs), _given(spec.params))

    defaults = _given(model.defaults)
    rules = []
    for i, rule in enumerate(model.rules):
        names = [rule.style] if isinstance(rule.style, str) else list(rule.style)
        jobs = []
        for name in names:
            if name not in styles:
                near = difflib.get_close_matches(name, list(styles), n=1)
                hint = f" (did you mean {near[0]!r}?)" if near else f" (known: {', '.join(styles)})"
                problems.append(f"rules.{i}.style: unknown style {name!r}{hint}")
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
    problems += _layout_problems(folders, state, styles)
    if problems:
        raise ConfigError(str(path), problems)
    return Config(
        path=path, **folders, state=state, after_success=model.after_success,
        rules=tuple(rules), ignore=tuple(model.ignore), watch=model.watch, worker=model.worker,
        metrics=model.metrics, notify=model.notify, web=model.web,
        style_images={n: refs for n, (refs, _) in styles.items()},
    )


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or child.is_relative_to(parent)


def _layout_problems(folders: dict[str, Path], state: Path, styles: dict) -> list[str]:
    """Folders that would feed the daemon its own files: each one apart from the others.

    Paths are compared resolved (symlinks followed), so a link cannot hide an overlap. An outbox in
    the inbox would repaint every result; an archive in it would re-take every archived photo; a
    style in it would be painted and archived away; a state folder in any of them would be moved
    or shown.
    """
    problems = []
    names = list(folders)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            pa, pb = folders[a], folders[b]
            if pa == pb:
                problems.append(f"{b}: is the same folder as {a} ({pa}); each needs its own")
            elif _inside(pa, pb) or _inside(pb, pa):
                inner, outer = (a, b) if _inside(pa, pb) else (b, a)
                problems.append(f"{inner}: inside the {outer} folder ({folders[inner]} in {folders[outer]}); "
                                "the folders must not contain one another")
    for name, folder in folders.items():
        if _inside(state.parent, folder):
            problems.append(f"state: inside the {name} folder ({state} in {folder}); keep it apart")
    for style, (refs, _) in styles.items():
        for ref in refs:
            if _inside(Path(ref.path), folders["inbox"]):
                problems.append(f"styles.{style}: style image inside the inbox ({ref.path}); it would be "
                                "taken as a photo and moved away")
    return problems


__all__ = ["Config", "ConfigError", "Rule", "load_config"]
