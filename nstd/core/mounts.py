"""Whether a configured folder is still on the file system nstd began with.

A network share unmounted or a USB disk pulled leaves its mount point behind as an empty folder of
the parent's file system (or no folder at all), and every photo in it seems to have left. That is
the machine's fault, not the photos': the work waits for the folder to come back. A folder
deleted and made again on the same file system is still under the same mount, and is not a fault.

The device number alone cannot tell: a bind mount (a share re-exported, a container's volume) has
the device of the file system under it. Linux's mount table names each mount with its own id.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

MOUNT_TABLE = Path("/proc/self/mountinfo")


def _unescape(field: str) -> str:
    # mountinfo writes space, tab, newline and backslash in a mount point as octal escapes
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def _mounts() -> Optional[dict[str, str]]:
    """Mount point -> mount id, the last mount over a point winning; None where there is no table."""
    try:
        lines = MOUNT_TABLE.read_text().splitlines()
    except OSError:
        return None
    table: dict[str, str] = {}
    for line in lines:
        fields = line.split()
        if len(fields) > 4:
            table[_unescape(fields[4])] = fields[0]
    return table


def mount_of(folder: Path) -> Optional[tuple]:
    """What the folder is on now: its enclosing mount's point and id (or, without a mount table,
    its device); None if the folder is not there."""
    try:
        device = os.stat(folder).st_dev
    except OSError:
        return None
    table = _mounts()
    if table is None:
        return ("device", device)
    path = Path(os.path.realpath(folder))
    for candidate in (path, *path.parents):
        if str(candidate) in table:
            return (str(candidate), table[str(candidate)])
    return ("device", device)


class MountWatch:
    def __init__(self, *folders: Path):
        self.first: dict[str, Optional[tuple]] = {}
        for folder in folders:
            self.remember(folder)

    def remember(self, folder: Path) -> None:
        """Record the folder's mount now (at start); a folder not there yet is recorded when first seen."""
        if self.first.get(str(folder)) is None:
            self.first[str(folder)] = mount_of(folder)

    def gone(self, folder: Path) -> bool:
        """True if the folder is missing, or on another mount than when it was first seen."""
        now = mount_of(folder)
        if now is None:
            return True
        self.remember(folder)
        return self.first[str(folder)] != now
