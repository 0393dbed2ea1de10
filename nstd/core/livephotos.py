"""Live Photos and motion photos: the short video a phone keeps beside a photo under the same name
(`IMG_1234.HEIC` + `IMG_1234.MOV`). The video is no photo to paint; it belongs with its photo, so
it is told as such while it waits and goes to the archive beside it, never failed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

VIDEO_SUFFIXES = frozenset({".mov", ".mp4", ".m4v"})


def companion_videos(photo: Path) -> list[Path]:
    """The videos beside `photo` that share its name (any case): a Live Photo's motion."""
    stem = photo.stem.lower()
    try:
        names = os.listdir(photo.parent)
    except OSError:
        return []
    return [photo.parent / n for n in sorted(names)
            if os.path.splitext(n)[1].lower() in VIDEO_SUFFIXES and os.path.splitext(n)[0].lower() == stem]


def photo_of(video: Path, photo_suffixes) -> Optional[Path]:
    """The photo a video beside it belongs to (same name, a photo's suffix), if one is there."""
    if video.suffix.lower() not in VIDEO_SUFFIXES:
        return None
    stem = video.stem.lower()
    try:
        names = os.listdir(video.parent)
    except OSError:
        return None
    return next((video.parent / n for n in sorted(names) if os.path.splitext(n)[0].lower() == stem
                 and os.path.splitext(n)[1].lower() in photo_suffixes), None)
