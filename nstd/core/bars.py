"""A percent bar on a terminal (`nstd stylize`, `nstd demo`), and log lines that do not tear it."""

from __future__ import annotations

import os
import sys

BAR_FORMAT = "{l_bar}{bar}| {n:.0f}% [{elapsed}<{remaining}{postfix}]"


def terminal_size(stream=None) -> tuple[int, int]:
    """(columns, lines) of the terminal; 80x24 where it says 0x0 (a pseudo-terminal nobody sized, as
    `script` or an editor's terminal gives), on which tqdm draws a bar of nothing, or hides it."""
    stream = stream or sys.stderr
    try:
        size = os.get_terminal_size(stream.fileno())
    except (OSError, ValueError, AttributeError):
        size = os.terminal_size((0, 0))
    return (size.columns or int(os.environ.get("COLUMNS", "0") or 0) or 80,
            size.lines or int(os.environ.get("LINES", "0") or 0) or 24)


def percent_bar(label: str, stream=None):
    """A bar of the work done in percent (the pyramid's scales differ in cost), drawn on `stream`."""
    from tqdm import tqdm
    stream = stream or sys.stderr
    columns, lines = terminal_size(stream)
    return tqdm(total=100.0, desc=label, unit="%", file=stream, ncols=columns, nrows=lines, bar_format=BAR_FORMAT)


def write_above_bars(text: str, stream) -> None:
    """Write a finished line above any bar on screen, which is then drawn again below it."""
    tqdm_module = sys.modules.get("tqdm")
    if tqdm_module is not None and getattr(tqdm_module.tqdm, "_instances", None):
        tqdm_module.tqdm.write(text, file=stream, end="")
    else:
        stream.write(text)
