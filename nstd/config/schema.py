"""The config file's shape: pydantic models with every key, type, bound and description.

pydantic does the type checking and gives key paths; `resolve` adds what a schema cannot say.
"""

from __future__ import annotations

import typing
from typing import Annotated, Literal, Optional, Union

import pydantic
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WrapValidator
from pydantic_core import PydanticCustomError

from nstd.core.jobs import literal_words, param_fields
from nstd.core.passwords import check_hash_format
from nstd.engine import EngineOptions, TransferParams
from nstd.engine.params import PRESETS

from .hours import ActiveHours


class _Strict(BaseModel):
    # NaN and infinity slip past every bound (nan > 0 is false, but so is nan <= 0): refused outright
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _one_problem(tp):
    """A number-or-word type (size: 512 or original) that reports one problem, not one per branch."""
    words = [repr(w) for w in literal_words(tp)]
    if typing.get_origin(tp) is not Union or not words:
        return tp

    def check(value, handler):
        try:
            return handler(value)
        except pydantic.ValidationError:
            raise PydanticCustomError("number_or_word", "expected a number or {words}",
                                      {"words": " / ".join(words)}) from None
    return Annotated[tp, WrapValidator(check)]


def _params_model() -> type[BaseModel]:
    """All TransferParams fields, each optional, plus `preset`: the shape of every `params:` key."""
    fields: dict = {"preset": (Optional[Literal[tuple(PRESETS)]], Field(None, description="start from a named "
                                                                        "recipe (seed: the seed notebook's)"))}
    for f in param_fields((TransferParams,)):
        fields[f.name] = (Optional[_one_problem(f.type)], Field(None, description=f.help))
    return pydantic.create_model("Params", __base__=_Strict, **fields)


def _on_off(tp):
    """YAML 1.1 reads a bare on / off (and yes / no) as a boolean: an on/off word takes them back."""
    if typing.get_origin(tp) is not Literal or not {"on", "off"} <= set(typing.get_args(tp)):
        return tp
    return Annotated[tp, BeforeValidator(lambda v: ("on" if v else "off") if isinstance(v, bool) else v)]


def _engine_model() -> type[BaseModel]:
    fields = {f.name: (_on_off(f.type), Field(f.default, description=f.help))
              for f in param_fields((EngineOptions,))}
    return pydantic.create_model("EngineSettings", __base__=_Strict, **fields)


ParamsModel = _params_model()
EngineModel = _engine_model()


class StyleImageModel(_Strict):
    path: str = Field(description="the image, relative to the config file's folder")
    weight: float = Field(1.0, gt=0, description="its share of the blend (the Gram targets are averaged by weight)")


class StyleModel(_Strict):
    images: list[Union[str, StyleImageModel]] = Field(min_length=1, description="one image or several "
                                                      "blended: a path, or {path, weight}")
    params: ParamsModel = Field(ParamsModel(), description="this style's parameters over `defaults` (the "
                                "same keys)")


class RuleModel(_Strict):
    match: Union[str, list[str]] = Field(description="glob(s) relative to the inbox (`**` any depth); the "
                                         "first rule that matches a photo takes it")
    style: Union[str, list[str]] = Field(description="style name(s) from `styles`: one painting per style")
    name: Optional[str] = Field(None, description="the outbox subfolder of its results (default: the style name)")
    params: ParamsModel = Field(ParamsModel(), description="parameters over the style's and `defaults` (the same "
                                "keys)")
    output: Literal["png", "jpg"] = Field("png", description="the results' file type")
    priority: int = Field(0, ge=-1000, le=1000,
                          description="higher runs first; first come, first served within a priority")


class WatchModel(_Strict):
    mode: Literal["native", "polling"] = Field("native", description="native: inotify; polling: for NFS and "
                                               "SMB shares, where inotify sees no other machine's writes")
    settle_seconds: float = Field(2.0, ge=0, description="a file is read once its size and time have not changed "
                                  "this long (a copy in progress is never read)")
    poll_seconds: float = Field(1.0, gt=0, description="how often polling looks (mode: polling)")
    rescan_minutes: float = Field(10.0, gt=0, description="a full walk of the inbox this often, whatever the "
                                  "watcher missed")
    decode_retries: int = Field(3, ge=0, description="a settled file that will not decode is looked at again "
                                "this often (waits of 2, 4, 8 s...) before it is refused")
    max_file_mb: float = Field(1000, gt=0, description="larger files are refused before they are read")


class WorkerModel(EngineModel):
    max_attempts: int = Field(3, ge=1, description="a job that crashes the worker this often fails for good")
    grace_seconds: float = Field(30.0, ge=0, description="on SIGTERM, the time the running job gets to finish "
                                 "before it is requeued")
    max_pixels: int = Field(50_000_000, gt=0, description="the most pixels a photo is decoded to: a larger JPEG "
                            "(a 50-200 MP phone sensor) is decoded reduced to fit, down to an eighth of its width; "
                            "other formats over it, and decompression bombs, are refused")
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
        return value if value is None else host_port(value, "127.0.0.1:9464")


def host_port(value: str, example: str) -> str:
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
        return host_port(value, "127.0.0.1:8040")

    @pydantic.field_validator("password_hash")
    @classmethod
    def _hash(cls, value: Optional[str]) -> Optional[str]:
        if value is not None:
            check_hash_format(value)
        return value


class NotifyModel(_Strict):
    urls: list[str] = Field([], description="apprise URLs: mailto://, json://, ntfy://, gotify://, slack://, ...")
    events: list[Literal["job_failed", "input_refused", "queue_drained", "worker_cannot_start", "machine_fault",
                         "host_out_of_rotation"]] = Field([
        "job_failed", "input_refused", "queue_drained", "worker_cannot_start", "machine_fault", "host_out_of_rotation"],
        description="what is sent; failures and refusals after the first within a minute go out as one message")


class ConfigModel(_Strict):
    inbox: str = Field(description="where people drop photos (relative paths: to the config file's folder)")
    outbox: str = Field(description="results: OUTBOX/RULE/PHOTO__STYLE.png, a .json loss log, the gallery")
    archive: Optional[str] = Field(None, description="inputs move here once all their results are written "
                                   "(default: beside the config, archive/)")
    failed: Optional[str] = Field(None, description="inputs that could not be processed, each with "
                                  "NAME.error.json (default: failed/)")
    state: Optional[str] = Field(None, description="the SQLite state file: the queue, inputs, results "
                                 "(default: .nstd/state.sqlite beside the config)")
    after_success: Literal["archive", "delete", "keep"] = Field("archive", description="what becomes of an input "
                                                                "whose results are all written")
    styles: dict[str, Union[str, StyleModel]] = Field(min_length=1, description="named styles: an image path, "
                                                      "or a section")
    rules: list[RuleModel] = Field(min_length=1, description="which photos get which styles; first match wins")
    ignore: list[str] = Field([], description="globs of inbox paths left alone")
    defaults: ParamsModel = Field(ParamsModel(), description="parameters of every painting (each is a `nstd "
                                  "stylize` option with _ for -)")
    watch: WatchModel = Field(WatchModel(), description="how the inbox is watched")
    worker: WorkerModel = Field(WorkerModel(), description="the engine and the worker that runs it")
    metrics: MetricsModel = Field(MetricsModel(), description="Prometheus metrics")
    notify: NotifyModel = Field(NotifyModel(), description="notifications through apprise")
    web: WebModel = Field(WebModel(), description="`nstd web`")
