"""Reading the YAML file and turning pydantic's errors into `key.path: problem` lines."""

from __future__ import annotations

import difflib
import typing
from pathlib import Path

import pydantic
import yaml

from nstd.core.errors import ConfigError

from .resolve import Config, resolve, unknown_styles_in
from .schema import ConfigModel

_UNION_TAGS = {"str", "list[str]", "StyleModel", "StyleImageModel", "Params"}


class DuplicateKey(ValueError):
    """A key given twice in one mapping: YAML would keep the second silently, losing the first."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load's loader, but a key given twice in one mapping (a second `web:` appended to the file)
    is an error naming both lines, not the first section silently dropped."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: SafeLoader's own error says so below
                continue
            if first is not None:
                raise DuplicateKey(f"{key}: given twice, at line {first + 1} and line "
                                   f"{key_node.start_mark.line + 1}; the second would silently replace the "
                                   "first (merge them into one)")
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def _key(loc: tuple) -> str:
    # pydantic names the union branch it tried inside the location; people want the key alone.
    return ".".join(str(p) for p in loc if p not in _UNION_TAGS)


def problem_lines(errors: list[dict], model: type[pydantic.BaseModel] = ConfigModel) -> list[str]:
    keyed = [(_key(err["loc"]) or "(top)", _message(err, model)) for err in errors]
    keys = {k for k, _ in keyed}
    # Of a union's branches, report the one that got furthest: drop a key another one extends.
    return list(dict.fromkeys(f"{k}: {m}" for k, m in keyed
                              if not any(o.startswith(k + ".") for o in keys)))


def _message(err: dict, model: type[pydantic.BaseModel]) -> str:
    if err["type"] == "extra_forbidden":
        near = difflib.get_close_matches(str(err["loc"][-1]), _keys_at(model, err["loc"][:-1]), n=1)
        return "unknown key" + (f" (did you mean {near[0]!r}?)" if near else "")
    if err["type"] == "missing":
        return "required key is missing"
    return f"{err['msg']} (got {err['input']!r})" if not isinstance(err["input"], dict) else err["msg"]


def _keys_at(model: type[pydantic.BaseModel], loc: tuple) -> list[str]:
    """The keys the schema knows at this location (`worker`, `rules.0.params`), for a "did you mean"."""
    for part in loc:
        if isinstance(part, int) or part in _UNION_TAGS:
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return []
        inner = _model_in(field.annotation)
        if inner is None:
            return []
        model = inner
    return list(model.model_fields)


def _model_in(tp):
    """The pydantic model a field's type holds (inside Optional, Union, list, dict), if any."""
    if isinstance(tp, type) and issubclass(tp, pydantic.BaseModel):
        return tp
    for arg in typing.get_args(tp):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def load_config(path: str | Path, check_images: bool = True) -> Config:
    """The config at `path`, checked; `check_images=False` for commands that only read or steer the
    state file (status, pause, resume, history): a broken style image must not stop an operator."""
    path = Path(path).expanduser().resolve()
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except FileNotFoundError:
        raise ConfigError(str(path), ["file not found"]) from None
    except DuplicateKey as e:
        raise ConfigError(str(path), [str(e)]) from None
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
        problems = problem_lines(e.errors())
        raise ConfigError(str(path), problems + [p for p in unknown_styles_in(raw) if p not in problems]) from None
    return resolve(model, path, check_images)
