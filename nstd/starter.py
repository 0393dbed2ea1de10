"""`nstd init DIR`: a folder to run nstd in, laid out as config.example.yaml describes.

The config written is config.example.yaml itself (shipped in the package), so the file a newcomer
reads is the file that runs. Its style images are generated stand-ins, one per path the config
names, and the inbox gets the folders its rules look at. The folder must be new or empty: init
never writes over anything.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml

from nstd.core.errors import NstdError
from nstd.intake.rules import pattern_folders
from nstd.samples import paint_strokes, paint_waves

FOLDERS = ("inbox", "outbox", "archive", "failed", "state", "styles")
PAINTERS = (paint_strokes, paint_waves)


def example_config() -> str:
    return resources.files("nstd.config").joinpath("example.yaml").read_text(encoding="utf-8")


def style_paths(config: dict) -> list[str]:
    """Every style image path the config names, in order, once each."""
    found = []
    for entry in config.get("styles", {}).values():
        images = [entry] if isinstance(entry, str) else entry.get("images", [])
        found += [i if isinstance(i, str) else i["path"] for i in images]
    return list(dict.fromkeys(found))


def rule_folders(config: dict) -> list[str]:
    """The inbox folders the rules' patterns start with (`sea/**` -> sea), to drop photos into."""
    patterns = []
    for rule in config.get("rules", []):
        patterns += [rule["match"]] if isinstance(rule["match"], str) else rule["match"]
    return pattern_folders(patterns)


def make_folder(root: Path, adopt: bool = False) -> Path:
    """Lay out `root` and return its config's path. With `adopt`, a folder that holds files already
    (a container's data volume with a photo in inbox/, a disk's lost+found) is laid out around them:
    nothing there is written over, and a config.yaml there refuses it."""
    path = root / "config.yaml"
    if root.exists() and not root.is_dir():
        raise NstdError(str(root), "is a file, not a folder")
    if adopt and (path.exists() or path.is_symlink()):
        raise NstdError(str(path), "exists: this folder is laid out already (`nstd check --config` it)")
    if not adopt and root.exists() and any(root.iterdir()):
        raise NstdError(str(root), "exists and is not empty; `nstd init` makes a new folder and never writes "
                                   "over one (pass another path, or --adopt to lay it out around its files)")
    text = example_config()
    config = yaml.safe_load(text)
    for folder in [*FOLDERS, *(f"inbox/{f}" for f in rule_folders(config))]:
        if (root / folder).exists() and not (root / folder).is_dir():
            raise NstdError(str(root / folder), "is in the way: nstd needs a folder here")
        (root / folder).mkdir(parents=True, exist_ok=True)
    for i, rel in enumerate(style_paths(config)):
        target = (root / rel).resolve()
        if not target.is_relative_to(root.resolve()) or target.exists():
            continue  # an absolute path in the example is the reader's own; a file there is kept
        target.parent.mkdir(parents=True, exist_ok=True)
        PAINTERS[i % len(PAINTERS)](seed=7 + i).save(target, quality=92)
    with open(path, "x", encoding="utf-8") as f:  # never over a config made meanwhile
        f.write(text)
    return path
