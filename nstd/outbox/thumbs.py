"""Pictures the worker leaves for reviewers: thumbnails and previews, hidden under `outbox/.nstd/`.

Kept apart from the gallery so that the worker, which writes them, needs neither the store nor
the HTML.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Optional

from PIL import Image

from nstd.core.images import encode_image

from .files import atomic_write_bytes

HIDDEN = ".nstd"
THUMB_SIDE = 256
VIEW_SIDE = 1280  # the gallery's big picture and its before/after photo: sharp on a laptop, 10x lighter than a PNG


def hidden_dir(outbox: Path, kind: str) -> Path:
    return outbox / HIDDEN / kind


def preview_path(outbox: Path, job_id: int) -> Path:
    return hidden_dir(outbox, "previews") / f"job{job_id}.jpg"


def write_jpeg(image: Image.Image, path: Path, side: Optional[int] = THUMB_SIDE) -> Path:
    img = image.convert("RGB")
    if side:
        img = img.copy()
        img.thumbnail((side, side), Image.Resampling.LANCZOS)
    atomic_write_bytes(path, encode_image(img, "JPEG"))
    return path


def thumbnail_paths(outbox: Path, job_id: int, input_sha256: str, style_keys: list[str]) -> dict:
    """Where a job's thumbnails go: the result's named by the job, the photo's by its content (shared
    by its paintings), each style image's by its key."""
    thumbs, photo = hidden_dir(outbox, "thumbs"), f"in-{input_sha256[:20]}"
    return {"result": thumbs / f"job{job_id}.jpg", "result_view": thumbs / f"job{job_id}-view.jpg",
            "content": thumbs / f"{photo}.jpg", "content_view": thumbs / f"{photo}-view.jpg",
            "styles": [thumbs / f"style-{hashlib.sha256(key.encode()).hexdigest()[:20]}.jpg" for key in style_keys]}


def write_thumbnails(outbox: Path, job_id: int, input_sha256: str, content: Image.Image,
                     styles: list[tuple[str, Image.Image]], result: Image.Image) -> dict:
    """Thumbnails of the photo, the style image(s) and the result, and the photo and the result at
    viewing size (same aspect: the viewer lays one over the other); paths relative to the outbox."""
    names = thumbnail_paths(outbox, job_id, input_sha256, [key for key, _ in styles])
    made = {"result": write_jpeg(result, names["result"]),
            "result_view": write_jpeg(result, names["result_view"], VIEW_SIDE)}
    content_thumb, content_view = names["content"], names["content_view"]
    made["content"] = content_thumb if content_thumb.exists() else write_jpeg(content, content_thumb)
    made["content_view"] = content_view if content_view.exists() else write_jpeg(content, content_view, VIEW_SIDE)
    made["styles"] = [p if p.exists() else write_jpeg(img, p) for p, (_, img) in zip(names["styles"], styles)]
    rel = lambda p: p.relative_to(outbox).as_posix()
    return {"result": rel(made["result"]), "result_view": rel(made["result_view"]), "content": rel(made["content"]),
            "content_view": rel(made["content_view"]), "styles": [rel(p) for p in made["styles"]]}
