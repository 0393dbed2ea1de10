"""The `nstd` command. The only module that turns errors into exit codes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__, logs
from .engine import EngineError
from .errors import NstdError
from .paramflags import add_param_flags, params_from_args


def _stylize(args) -> int:
    from .stylize import StyleArg, stylize

    params, options = params_from_args(args)
    image, log, result = stylize(args.content, [StyleArg.parse(s) for s in args.style], args.output,
                                 params, options, init_image=args.init_image)
    t = result.info["timings"]
    print(f"wrote {image}\nloss log {log}\n"
          f"final loss {result.final['total']:.4g} in {t['total_seconds']:.1f} s "
          f"({t['seconds_per_iteration'] * 1000:.0f} ms/iteration on {result.info['device']})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nstd", description="Neural style transfer daemon.")
    parser.add_argument("--version", action="version", version=f"nstd {__version__}")
    parser.add_argument("--log-json", action=argparse.BooleanOptionalAction, default=None,
                        help="JSON log lines (default: only when stderr is not a terminal)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("stylize", help="paint one image in one or more styles")
    p.add_argument("content", type=Path, help="the photo")
    p.add_argument("--style", "-s", action="append", required=True, metavar="STYLE[:WEIGHT]",
                   help="a style image, repeatable; weights blend several styles")
    p.add_argument("--output", "-o", type=Path, required=True, help="output .png or .jpg")
    p.add_argument("--init-image", type=Path, help="start from this image (sets --init image)")
    add_param_flags(p)
    p.set_defaults(func=_stylize)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure(json=args.log_json)
    try:
        return args.func(args)
    except NstdError as e:
        print(f"nstd: {e}", file=sys.stderr)
        return e.exit_code
    except EngineError as e:
        print(f"nstd: {e}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return 130
