"""`nstd demo`: a fresh workspace, sample pictures, the real daemon until the queue is empty."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Optional

from nstd.core.bars import percent_bar
from nstd.core.errors import NstdError
from nstd.core.images import load_image
from nstd.outbox.files import safe_component
from nstd.samples import paint_scene, paint_strokes
from nstd.store.statefile import daemon_running_on

MARK = "# Written by `nstd demo`."
# What `nstd demo` makes in its workspace, and so all that a second `nstd demo` may remove there.
DEMO_ENTRIES = ("inbox", "outbox", "archive", "failed", "state", "styles", "config.yaml")
DEMO_CONFIG = MARK + """ Relative paths are resolved against this file's folder.
inbox: ./inbox
outbox: ./outbox
archive: ./archive
failed: ./failed
state: ./state/nstd.sqlite
styles:
  {style_key}: ./styles/{style_name}
rules:
  - match: "**/*"
    style: {style_key}
defaults:
  size: {size}
  iterations: {iterations}
watch:
  settle_seconds: 0.5
"""


def made_by_demo(root: Path) -> bool:
    config = root / "config.yaml"
    try:
        return not config.is_symlink() and config.read_text(encoding="utf-8").startswith(MARK)
    except (OSError, UnicodeDecodeError):
        return False


def renew(root: Path) -> None:
    for name in DEMO_ENTRIES:
        entry = root / name
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        elif entry.exists() or entry.is_symlink():
            entry.unlink()


def schedule_words(size: int, iterations: int, picture=(256, 192)) -> str:
    """What each demo picture runs, as the engine's default pyramid plans it: '144x108 and
    192x144 px, 100 + 50 iterations'."""
    from nstd.engine import TransferParams
    from nstd.engine.pyramid import plan, scale_dims
    params = TransferParams(size=size, iterations=iterations)
    scale = size / max(picture)
    final = (max(1, round(picture[0] * scale)), max(1, round(picture[1] * scale)))
    scales = plan(scale_dims(final, params.first_scale, params.scales), iterations)
    sizes = " and ".join(f"{s.dims[0]}x{s.dims[1]}" for s in scales)
    return f"{sizes} px, {' + '.join(str(s.iterations) for s in scales)} iterations"


def make_workspace(root: Path, contents: list[Path], style: Optional[Path], size: int,
                   iterations: int) -> Path:
    """Create the folders, the config and the sample pictures; returns the config path.

    A workspace an earlier `nstd demo` made is renewed (its own folders only); any other folder
    that is not empty is refused, so the demo never deletes what it did not make."""
    if root.exists() and any(root.iterdir()):
        if not made_by_demo(root):
            raise NstdError(str(root), "exists, is not empty and was not made by `nstd demo`; "
                                       "pass a new folder with --workspace")
        if daemon_running_on(root / "state" / "nstd.sqlite"):
            raise NstdError(str(root), "a daemon is running on this demo workspace; stop it first")
        renew(root)
    (root / "styles").mkdir(parents=True)
    inbox = root / "inbox"
    (inbox / "friends").mkdir(parents=True)
    if style:
        style_name = style.name
        shutil.copy(style, root / "styles" / style_name)
    else:
        style_name = "strokes.png"
        paint_strokes().save(root / "styles" / style_name)
    config = root / "config.yaml"
    style_key = safe_component(Path(style_name).stem).lower()
    config.write_text(DEMO_CONFIG.format(style_key=style_key, style_name=style_name, size=size,
                                         iterations=iterations))
    # Written to a temp name and renamed, as a careful uploader would; one goes in a subfolder.
    samples = [(p.name, load_image(p)) for p in contents] or \
              [(f"scene{i}.jpg", paint_scene(i)) for i in range(3)]
    for i, (name, img) in enumerate(samples):
        folder = inbox / "friends" if i == len(samples) - 1 else inbox
        tmp = folder / f".{name}.part"
        img.convert("RGB").save(tmp, format="JPEG" if name.lower().endswith((".jpg", ".jpeg")) else "PNG")
        tmp.rename(folder / name)
    return config


class JobBars:
    """The demo's progress on a terminal: a bar per picture in percent of the work (the scales
    differ in cost), with the latest loss and the scale; nothing elsewhere (the log has it)."""

    def __init__(self, stream=sys.stderr):
        self.stream = stream
        self.tty = stream.isatty()
        self.bar, self.job_id = None, None

    def __call__(self, job_id: int, progress: dict) -> None:
        if not self.tty:
            return
        if job_id != self.job_id:
            self.close()
            self.job_id = job_id
            self.bar = percent_bar(f"job {job_id}", self.stream)
        self.bar.update(min(100.0, float(progress.get("percent") or 0)) - self.bar.n)
        if progress.get("loss") is not None:
            self.bar.set_postfix(loss=f"{progress['loss']:.4g}", scale=progress.get("scale", "?"))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def command_for(argv0: str) -> str:
    """How to run nstd again from this shell: `nstd` when it is on PATH, else its full path."""
    me = Path(argv0)
    if me.name != "nstd":  # python -m nstd
        return f"{sys.executable} -m nstd"
    found = shutil.which("nstd")
    return "nstd" if found and Path(found).resolve() == me.resolve() else str(me.resolve())
