"""Command-line flags derived from the engine's parameter dataclasses (one home for defaults)."""

from __future__ import annotations

import argparse
import math
import typing

from nstd.engine.params import PRESETS, EngineOptions, TransferParams, params_from

from .jobs import ParamField, literal_words, param_fields


def _unwrap_optional(tp):
    if typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _number_or_word(tp):
    words = literal_words(tp)
    number = next(o for o in typing.get_args(tp) if o in (int, float))

    def convert(text: str):
        if text in words:
            return text
        try:
            return number(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: expected a number or {' / '.join(words)}") from None
    return convert


def add_param_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("transfer parameters (defaults shown; YAML uses the same names)")
    group.add_argument("--preset", choices=sorted(PRESETS), help="start from a named recipe")
    for f in param_fields():
        _add_flag(group, f)


def _add_flag(group, f: ParamField) -> None:
    flag = "--" + f.name.replace("_", "-")
    tp = _unwrap_optional(f.type)
    shown = "" if f.default is None else f" (default: {f.default})"
    # argparse formats help with %: a "90 %" in a description must reach it as "90 %%".
    kw: dict = {"dest": f.name, "default": None, "help": (f.help + shown).replace("%", "%%")}
    origin = typing.get_origin(tp)
    if tp is bool:
        kw["action"] = argparse.BooleanOptionalAction
    elif origin is typing.Literal:
        kw["choices"] = typing.get_args(tp)
        if f.name == "preserve_colors":
            # A bare --preserve-colors means the paper's luminance-only transfer.
            kw.update(nargs="?", const="luminance")
    elif origin is typing.Union:  # a number or a word (size: 512 or original)
        kw.update(type=_number_or_word(tp), metavar=f.name.upper())
    elif origin is tuple:
        kw.update(nargs="+", type=typing.get_args(tp)[0], metavar=f.name.upper())
    else:
        kw["type"] = _finite if tp is float else tp
    group.add_argument(flag, **kw)


def number_type(kind: type, low=None, high=None):
    """An argparse type for a number a person types: finite, within [low, high], else a usage error."""
    words = "a whole number" if kind is int else "a number"

    def convert(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {words}") from None
        if not math.isfinite(value):  # NaN and infinity are no one's setting
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"from {low} to {high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"{text} is out of range: {bounds}")
        return value
    return convert


_finite = number_type(float)


def params_from_args(args: argparse.Namespace) -> tuple[TransferParams, EngineOptions]:
    given: dict[type, dict] = {TransferParams: {}, EngineOptions: {}}
    for f in param_fields():
        value = getattr(args, f.name, None)
        if value is not None:
            given[f.owner][f.name] = tuple(value) if isinstance(value, list) else value
    return params_from(args.preset, **given[TransferParams]), EngineOptions(**given[EngineOptions])
