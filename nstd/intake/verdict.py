"""What intake decides of an inbox entry before and beside the rules, in one place: the daemon's
intake refuses by these words, and `nstd rules` says them, so the command can never promise a
painting that the daemon refuses (a link, a named pipe, a file over the size limit, text named
.jpg)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from nstd.core.fileids import kind_of

from .inspector import NOT_AN_IMAGE, surely_not_an_image, too_big
from .walker import FILE, LINK, Entry

LINK_REFUSED = ("a symbolic link: never followed out of the inbox (the link itself was moved here; its target was "
                "not touched)")


def entry_refusal(entry: Entry) -> Optional[str]:
    """Why this entry is refused whatever the rules say: a link, or no regular file."""
    if entry.kind == LINK:
        return LINK_REFUSED
    if entry.kind != FILE:
        return f"{kind_of(entry.mode)}, not a regular file"
    return None


def file_refusal(path: Path, inbox: Path, max_bytes: float) -> Optional[str]:
    """Why this regular file is refused once a rule takes it: over the size limit, or surely no
    image. None where it may be painted (the decode in the inspector's child has the last word)."""
    size = os.lstat(path).st_size
    if size > max_bytes:
        return too_big(size, max_bytes)
    return NOT_AN_IMAGE if surely_not_an_image(str(path), str(inbox)) == NOT_AN_IMAGE else None
