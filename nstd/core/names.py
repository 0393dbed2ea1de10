"""File names as the file system has them (bytes), and as people read them.

POSIX names are bytes; Python hands a name that is not UTF-8 (``caf\\xe9.jpg`` from a Latin-1
camera or share) to us as a str with lone surrogates (PEP 383). Such a str round-trips to the
file system, but UTF-8 encoders (SQLite, HTML, a terminal) refuse it. Code that needs the real
name keeps the str; code that shows a name to a person renders it with `shown`.
"""

from __future__ import annotations

import os


def fs_bytes(name: str) -> bytes:
    """The exact bytes of a name as the file system stores it."""
    return os.fsencode(name)


def from_fs_bytes(raw: bytes) -> str:
    return os.fsdecode(raw)


def shown(name: str) -> str:
    """A readable, UTF-8-safe rendering: bytes that are not UTF-8 appear as \\xNN escapes."""
    if not isinstance(name, str):
        return name
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def shown_fields(_logger, _method, event: dict) -> dict:
    """structlog processor: every string in an event renders readably, whatever its bytes."""
    for key, value in event.items():
        if isinstance(value, str):
            event[key] = shown(value)
    return event
