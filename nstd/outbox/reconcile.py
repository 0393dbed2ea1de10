"""The folders are the truth the state file is checked against, at every start.

A state file can know less than the folders: it was rebuilt, reset, or restored from last week's
backup onto this week's disk. So before the daemon takes a photo, what the folders hold is
adopted:

* a painting in outbox/<rule>/ with its loss log, unknown to the state or recorded as queued,
  failed, withdrawn or deleted: done (under its own job id where that is free), so it is shown and
  never painted again;
* a photo in failed/ with its `.error.json`, unknown to the state: refused, with that reason, so
  `nstd retry` can bring it back;
* a deletion in the trash unknown to the state: a deleted result, so `nstd restore` finds it.

Only what the state does not already know is read: a start over 10,000 known results lists the
folders and parses no loss log.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator, Optional

from nstd.config import Config
from nstd.core import confine
from nstd.core.fileids import file_sha256
from nstd.store import Store

from .files import ERROR_SUFFIX, LeavesFolder, confined, log_path_for
from .thumbs import thumbnail_paths
from .trash import deleted_folders

NEEDED = ("job_key", "job_id", "input", "input_sha256", "rule", "style", "params")
_LARGEST_ID = 10**15  # a log with a longer number is not nstd's: its id is not taken


def reconcile(store: Store, config: Config) -> dict:
    """Adopt what the folders hold and the state does not know; returns the counts."""
    counts = {"results": 0, "unreadable": 0, "refused": 0, "deleted": 0}
    known = {image for _, image in store.done_images()}
    paintings = sorted(_paintings(config.outbox, counts, known), key=lambda t: -t[2])
    store.raise_job_id_floor(max((job_id_of(log) for _, log, _ in paintings), default=0))
    for image, log, mtime in paintings:  # newest first: an id two eras both used names the newer one's files
        if _adopt(store, config, image, log, mtime) is not None:
            counts["results"] += 1
    counts["refused"] = _adopt_failed(store, config)
    counts["deleted"] = _adopt_trash(store, config, counts)
    return counts


def job_id_of(log: dict) -> int:
    try:
        job_id = int(log["job_id"])
    except (TypeError, ValueError, KeyError):
        return 0
    return job_id if 0 < job_id < _LARGEST_ID else 0


def _adopt(store: Store, config: Config, image: Path, log: dict, mtime: float) -> Optional[int]:
    relpath, sha = log["input"], log["input_sha256"]
    where = _photo_now(config, relpath)
    state = "kept" if config.after_success == "keep" and where.is_relative_to(config.inbox) else "archived"
    job_id = job_id_of(log)
    outputs = _outputs(config.outbox, image, log, job_id, store.job_exists(job_id))
    spec = {"images": [{"path": s.get("path"), "weight": s.get("weight", 1.0)} for s in log.get("style_files", [])],
            "params": log["params"], "output_ext": image.suffix.lstrip(".")}
    return store.restore_result(relpath, str(where), sha, state, job_id, log["job_key"], log["rule"], log["style"],
                                spec, outputs, mtime)


def _paintings(outbox: Path, counts: dict, known: set[str] = frozenset(),
               base: Optional[Path] = None) -> Iterator[tuple[Path, dict, float]]:
    """(image as it lies in the outbox, its loss log, the image's mtime) of every result in
    <base>/<rule>/ (base: the outbox, or a trash folder laid out like it) not in `known`."""
    base = base or outbox
    if not base.is_dir():
        return
    rules = (p for p in base.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith("."))
    for folder in sorted(rules):
        entries = {p.name: p for p in folder.iterdir()}
        for name, path in entries.items():
            if path.suffix in (".json", "") or name.endswith(".loss.png") or path.is_symlink() or not path.is_file():
                continue
            placed = outbox / path.relative_to(base)
            if str(placed) in known or log_path_for(path).name not in entries:
                continue
            try:
                log = json.loads(confine.read_bytes(log_path_for(path)))
                if not all(k in log for k in NEEDED):
                    raise ValueError("not a daemon's loss log")
                yield placed, log, path.stat().st_mtime
            except (OSError, ValueError):
                counts["unreadable"] += 1


def any_painting(outbox: Path) -> bool:
    return any(_paintings(outbox, {}))


def _adopt_failed(store: Store, config: Config) -> int:
    """Photos in failed/ beside their reason that the state does not list: refused, retryable."""
    known = store.quarantined_paths()
    adopted = 0
    for reason in sorted(config.failed.rglob(f"*{ERROR_SUFFIX}")):
        photo = reason.with_name(reason.name[:-len(ERROR_SUFFIX)])
        if str(photo) in known or reason.is_symlink() or not photo.is_file() or photo.is_symlink():
            continue
        try:
            report = json.loads(confine.read_bytes(reason))
            relpath, cause = str(report["input"]), str(report["error"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        sha = file_sha256(photo, config.failed)
        if sha is None:
            continue
        store.fail_input(relpath, str(photo), sha, photo.stat().st_size, cause)
        adopted += 1
    return adopted


def _adopt_trash(store: Store, config: Config, counts: dict) -> int:
    """Deletions in the trash that the state does not list as deleted: restorable again."""
    adopted = 0
    for folder, job_id, _ in deleted_folders(config.outbox):
        known = store.find_job(job_id)
        if known is not None and known.state.value == "deleted":
            continue
        for image, log, mtime in _paintings(config.outbox, counts, base=folder):
            adopted_id = _adopt(store, config, image, log, mtime)
            if adopted_id is not None and store.mark_deleted([adopted_id]):
                adopted += 1
    return adopted


def _photo_now(config: Config, relpath: str) -> Path:
    """Where the painted photo lies now: the archive, else the inbox (the start-up scan files it),
    else where the archive would hold it."""
    candidates = []
    for root in (config.archive, config.inbox):
        try:
            candidates.append(confined(root, relpath))
        except LeavesFolder:
            pass
    return next((p for p in candidates if p.is_file()), candidates[0] if candidates else config.archive)


def _outputs(outbox: Path, image: Path, log: dict, job_id: int, id_taken: bool) -> dict:
    """What the worker reported when it painted this, as far as its loss log and the files say."""
    keys = [f"sha256:{s.get('sha256')}" for s in log.get("style_files", [])]
    names = thumbnail_paths(outbox, job_id, log["input_sha256"], keys)
    if id_taken:  # the result's are named by the job's id: another job of that id made them
        names.pop("result"), names.pop("result_view")
    rel = lambda p: p.relative_to(outbox).as_posix()  # noqa: E731
    thumbs = {k: rel(p) for k, p in names.items() if k != "styles" and p.is_file()}
    thumbs["styles"] = [rel(p) for p in names["styles"] if p.is_file()]
    plot = image.with_suffix(".loss.png")
    timings = log.get("timings", {})
    return {"image": str(image), "log": str(log_path_for(image)), **({"plot": str(plot)} if plot.is_file() else {}),
            "thumbs": thumbs, "final": {k: v for k, v in log.get("final", {}).items() if k != "style_layers"},
            "seconds": timings.get("total_seconds"), "seconds_per_iteration": timings.get("seconds_per_iteration"),
            "device": log.get("device"), "precision": log.get("precision"), "calibration": log.get("calibration"),
            "output_size": log.get("output_size"), "iterations": [s.get("iterations") for s in log.get("schedule", [])],
            "rebuilt": True}


__all__ = ["any_painting", "job_id_of", "reconcile"]
