"""File identities: an input's content hash, and a style image's cheap size+mtime stamp."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Optional


def file_sha256(path: Path | str) -> Optional[str]:
    """The hash of a regular file's bytes; None for a symlink or a file that cannot be read."""
    path = Path(path)
    try:
        if path.is_symlink():
            return None
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()
    except OSError:
        return None


def file_stamp(path: Path | str) -> str:
    """Size and mtime: enough to notice an edited style image without hashing it every time."""
    try:
        st = os.stat(path)
    except OSError:
        return "missing"
    return f"{st.st_size}:{st.st_mtime_ns}"
