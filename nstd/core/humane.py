"""Durations and reasons as people read them, the same in `nstd status`, the gallery and the logs."""

from __future__ import annotations

import datetime as _dt
from typing import Optional


def duration(seconds: Optional[float]) -> str:
    """'12.3 s', '5m03s', '2h05m'; '?' when unknown."""
    if seconds is None:
        return "?"
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def first_line(text: Optional[str]) -> str:
    """The headline of an error, whatever it holds (a traceback, nothing at all)."""
    lines = (text or "").strip().splitlines()
    return lines[0] if lines else "no reason recorded"


def now_iso() -> str:
    """The local time with its UTC offset, to the second: what people and scripts both read."""
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def iso(timestamp: Optional[float]) -> Optional[str]:
    if timestamp is None:
        return None
    return _dt.datetime.fromtimestamp(timestamp).astimezone().isoformat(timespec="seconds")


def size_words(n: Optional[int]) -> str:
    """'0 B', '900 B', '512 KiB', '1.2 MiB', '3.4 GiB'; '?' when unknown."""
    if n is None:
        return "?"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            value = n / scale
            return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
    return f"{n} B"


def plural(n: int, noun: str, nouns: Optional[str] = None) -> str:
    """'1 result', '2 results', '0 results'."""
    return f"{n} {noun if n == 1 else nouns or noun + 's'}"


def progress_words(p: dict) -> str:
    """A running job's progress as `nstd status` and the cards say it: '52% (104/~200), 1.20 it/s,
    ETA 1m30s'; '~' marks a total that a time budget is still planning."""
    total = f"~{p.get('total', '?')}" if p.get("estimated") else p.get("total", "?")
    return (f"{float(p.get('percent') or 0):.0f}% ({p.get('done', 0)}/{total}), {p.get('it_per_s') or 0:.2f} it/s, "
            f"ETA {duration(p.get('eta_s'))}")
