"""The reference pages, generated from the code so that they cannot drift: every YAML key from the
config schema (nstd.config.schema, itself built from the parameter dataclasses) and every command
and flag from the argparse parser. docs/hooks/reference.py puts them into the docs site at build
time; tests/test_docs.py fails on a key or a flag without a description."""

from __future__ import annotations

import argparse
import re
import typing
from pathlib import Path
from typing import Iterator, Union

from pydantic import BaseModel

from nstd.cli import build_parser
from nstd.config.schema import ConfigModel
from nstd.engine import TransferParams

_PARAM_DEFAULTS = TransferParams().as_dict()


def _models_in(tp) -> list[type[BaseModel]]:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp]
    return [m for arg in typing.get_args(tp) for m in _models_in(arg)]


def _type_words(tp) -> str:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _type_words(typing.get_args(tp)[0])
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in typing.get_args(tp))
    if origin is Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return " or ".join(_type_words(a) for a in args)
    if origin in (list, tuple):
        return "list of " + _type_words(typing.get_args(tp)[0])
    if origin is dict:
        return "mapping of " + _type_words(typing.get_args(tp)[1])
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return "section"
    return getattr(tp, "__name__", str(tp))


def config_keys(model: type[BaseModel] = ConfigModel, prefix: str = "") -> Iterator[tuple[str, str, str, str]]:
    """(key path, type, default, description) of every key, sections before what they hold."""
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        default = "required" if field.is_required() else _default_words(field.default)
        if model.__name__ == "Params" and name in _PARAM_DEFAULTS:  # all optional: the dataclass has the default
            default = _default_words(_PARAM_DEFAULTS[name])
        said = field.description or ""
        derived = _DERIVED.search(said)
        if default == "none" and derived:  # None stands for a default worked out from elsewhere: say that one
            default, said = derived[1], _DERIVED.sub("", said)
        yield path, _type_words(field.annotation), default, said
        for inner in _models_in(field.annotation):
            if inner.__name__ == "Params" and path != "defaults":
                continue  # a style's and a rule's params take the keys listed under defaults
            origin = typing.get_origin(field.annotation)
            if origin is dict or any(typing.get_origin(a) is dict for a in typing.get_args(field.annotation)):
                sub = f"{path}.NAME."
            elif origin is list or any(typing.get_origin(a) is list for a in typing.get_args(field.annotation)):
                sub = f"{path}[]."
            else:
                sub = f"{path}."
            yield from config_keys(inner, sub)


_DERIVED = re.compile(r"\s*\(default: ([^)]*)\)")


def _default_words(value) -> str:
    if isinstance(value, BaseModel):
        return ""
    if value is None:
        return "none"
    return f"`{value}`" if not isinstance(value, (list, dict)) or value else "empty"


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


def command_flags(q: argparse.ArgumentParser) -> Iterator[tuple[str, str]]:
    for action in q._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        name = ", ".join(action.option_strings) or action.metavar or action.dest
        yield name, (action.help or "").replace("%%", "%")


def undescribed() -> list[str]:
    """Every YAML key and command-line argument that has no description."""
    missing = [path for path, _, _, said in config_keys() if not said.strip()]
    for name, q in _commands().items():
        if not (q.description or "").strip():
            missing.append(f"nstd {name}")
        missing += [f"nstd {name} {flag}" for flag, said in command_flags(q) if not said.strip()]
    return missing


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def config_reference() -> str:
    rows = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    rows += [f"| `{path}` | {kind} | {default} | {_cell(said)} |" for path, kind, default, said in config_keys()]
    return "\n".join(rows) + "\n"


def commands_reference() -> str:
    out = []
    for name, q in _commands().items():
        out += [f"## nstd {name}", "", _cell(q.description or ""), "", "```", _usage(q), "```", ""]
        flags = list(command_flags(q))
        if flags:
            out += ["| argument | meaning |", "| --- | --- |"]
            out += [f"| `{_cell(flag)}` | {_cell(said)} |" for flag, said in flags]
            out.append("")
    return "\n".join(out)


def _usage(q: argparse.ArgumentParser) -> str:
    """The usage line at a fixed width: the page must not change with the terminal that wrote it."""
    formatter = argparse.HelpFormatter(q.prog, width=100)
    formatter.add_usage(q.usage, q._actions, q._mutually_exclusive_groups)
    return formatter.format_help().strip()


# The reference pages hold their tables between these markers, written by `python -m nstd.reference`
# (so that they read in a plain checkout) and checked against the code by tests/test_docs.py.
PAGES = {"reference/config.md": ("<!-- reference: config -->", config_reference),
         "reference/commands.md": ("<!-- reference: commands -->", commands_reference)}
END = "<!-- end of the generated reference -->"


def with_reference(markdown: str, marker: str, make) -> str:
    """The page with the generated part after `marker` (up to END) made anew."""
    if marker not in markdown:
        return markdown
    head, _, rest = markdown.partition(marker)
    _, found, tail = rest.partition(END)
    return f"{head}{marker}\n{make()}{END}\n" + (tail.lstrip("\n") if found else "")


def write_pages(docs: Path) -> list[Path]:
    changed = []
    for rel, (marker, make) in PAGES.items():
        page = docs / rel
        old = page.read_text(encoding="utf-8")
        new = with_reference(old, marker, make)
        if new != old:
            page.write_text(new, encoding="utf-8")
            changed.append(page)
    return changed


if __name__ == "__main__":
    for written in write_pages(Path(__file__).resolve().parents[1] / "docs"):
        print(f"wrote {written}")
