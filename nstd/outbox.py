"""What lands in the outbox: names, atomic writes, and the JSON loss log.

A reader of the outbox never sees a half-written file: each file is written to a hidden temp name
in the same folder, fsynced, renamed into place, and the folder fsynced. The loss log is placed
before the image, so any visible image already has its log beside it.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from PIL import Image

from .images import encode_image, output_format

TEMP_MARK = ".nstd-tmp-"
_UNSAFE = re.compile(r"[^\w.\-]+", re.UNICODE)


def safe_component(name: str, limit: int = 100) -> str:
    """A path component that cannot escape a folder or hide itself: no separators, no leading dot."""
    cleaned = _UNSAFE.sub("_", name).strip("._") or "unnamed"
    return cleaned[:limit]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{TEMP_MARK}{os.getpid()}-{path.name}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def log_path_for(image_path: Path) -> Path:
    return image_path.with_suffix(".json")


def write_result(image: Image.Image, log: dict, image_path: Path) -> tuple[Path, Path]:
    """Write the loss log, then the image, each atomically. Returns (image, log) paths."""
    image_path = Path(image_path)
    data = encode_image(image, output_format(image_path))
    log_path = log_path_for(image_path)
    atomic_write_bytes(log_path, json.dumps(log, indent=1, default=str).encode())
    atomic_write_bytes(image_path, data)
    return image_path, log_path


def remove_stale_temps(folder: Path) -> list[Path]:
    """Delete temp files a crash left behind; returns what was removed."""
    removed = []
    if folder.is_dir():
        for p in folder.rglob(f"{TEMP_MARK}*"):
            if p.is_file():
                p.unlink(missing_ok=True)
                removed.append(p)
    return removed
