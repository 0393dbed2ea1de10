"""The state file, opened for the daemon: a lock another process holds is waited out, a damaged file
is set aside and the state rebuilt from the folders.

What the folders say is enough to go on: every painting in the outbox has its loss log beside it,
naming its job (key, id, rule, style, parameters) and its photo (name and SHA-256), so it is
recorded as done again and never painted twice; a photo in the inbox is queued by the start-up
scan, as always. What only the state file knew is lost with it and said so: failed jobs' reasons
(their photos lie in failed/ with the reason beside them), attempts, deleted results, a pause.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Callable, Iterator, Optional

from nstd.config import Config
from nstd.store import DamagedStateFile, Store, StoreUnavailable, set_aside, take_lock

from .files import LeavesFolder, confined, log_path_for
from .thumbs import hidden_dir, thumbnail_paths
from .trash import highest_id_in_trash

# How often the wait for a state file another process holds says that it still waits.
LOCK_MESSAGE_EVERY = 30.0
NEEDED = ("job_key", "job_id", "input", "input_sha256", "rule", "style", "params")


def open_for_daemon(config: Config, log, sleep: Callable[[float], None] = time.sleep) -> Store:
    """The daemon's store, locked. Waits while another process holds the file (each try waits 30 s
    in SQLite itself); a damaged file is set aside under a dated name and rebuilt from the folders."""
    path = config.state
    waited_since: Optional[float] = None
    said = float("-inf")
    while True:
        try:
            store = Store(path)
            try:
                store.check_writable()
            except StoreUnavailable:
                store.close()
                raise
        except StoreUnavailable as e:
            now = time.monotonic()
            waited_since = now if waited_since is None else waited_since
            if now - said >= LOCK_MESSAGE_EVERY:
                log.warning("waiting for the state file", state=str(path), cause=e.cause,
                            waited_s=round(now - waited_since))
                said = now
            sleep(1.0)
            continue
        except DamagedStateFile as e:
            return _rebuilt(config, log, e.cause)
        if waited_since is not None:
            log.info("state file free again: starting", state=str(path),
                     waited_s=round(time.monotonic() - waited_since))
        try:
            store.lock()
            _follow_folders(store, config, log)
            store.raise_job_id_floor(highest_id_on_disk(config.outbox))
            if store.created and any(_paintings(config.outbox, {})):
                _rebuild(store, config, log, "no state file (new, deleted or reset) while the outbox holds results",
                         None)
        except BaseException:
            store.close()
            raise
        return store


def _rebuilt(config: Config, log, cause: str) -> Store:
    fd = take_lock(config.state)  # before the rename: a second daemon must not rebuild beside this one
    try:
        kept = set_aside(config.state)
        store = Store(config.state)
    except BaseException:
        os.close(fd)
        raise
    store.lock(fd)
    _follow_folders(store, config, log)
    store.raise_job_id_floor(highest_id_on_disk(config.outbox))
    _rebuild(store, config, log, cause, kept)
    return store


def _moved(old: str, new: str) -> bool:
    """Whether a folder's files went from old to new: old is gone (moved, a share mounted elsewhere)
    or is new itself under another name. An old folder still there is another folder: the config was
    pointed at a new one, and the results stay where they were painted."""
    try:
        return os.path.samefile(old, new)
    except FileNotFoundError:
        return not os.path.lexists(old)
    except OSError:
        return False


def _follow_folders(store: Store, config: Config, log) -> None:
    """Before any file is looked at: paths under folders that moved are moved in the state too."""
    for move in store.follow_folders(config.roles, _moved):
        log.warning("a folder moved: the state follows it", role=move["role"], moved_from=move["from"],
                    moved_to=move["to"])


def _rebuild(store: Store, config: Config, log, cause: str, kept: Optional[Path]) -> None:
    found = rebuild_from_folders(store, config)
    store.record_rebuild({"when": time.time(), "cause": cause, "set_aside_as": str(kept) if kept else None, **found})
    log.error("the state file was damaged: set aside, and the state rebuilt from the folders" if kept else
              "the state file is new but the outbox holds results: the state rebuilt from the folders",
              state=str(config.state), set_aside_as=str(kept) if kept else None, cause=cause,
              results=found["results"], unreadable_logs=found["unreadable"])


def rebuild_from_folders(store: Store, config: Config) -> dict:
    """Record every painting in the outbox as done (newest first: a job id two eras of the state file
    both used names the newer one's thumbnails). Returns what was found."""
    counts = {"results": 0, "unreadable": 0}
    paintings = sorted(_paintings(config.outbox, counts), key=lambda t: -t[2])
    store.raise_job_id_floor(max((_job_id(log) for _, log, _ in paintings), default=0))
    for image, log, mtime in paintings:
        relpath, sha = log["input"], log["input_sha256"]
        where = _photo_now(config, relpath)
        state = "kept" if config.after_success == "keep" and where.is_relative_to(config.inbox) else "archived"
        job_id = _job_id(log)
        outputs = _outputs(config.outbox, image, log, job_id, store.job_exists(job_id))
        spec = {"images": [{"path": s.get("path"), "weight": s.get("weight", 1.0)} for s in log.get("style_files", [])],
                "params": log["params"], "output_ext": image.suffix.lstrip(".")}
        if store.restore_result(relpath, str(where), sha, state, job_id, log["job_key"], log["rule"], log["style"],
                                spec, outputs, mtime):
            counts["results"] += 1
    return counts


_ID_NAME = re.compile(r"job(\d{1,15})(?:-view)?\.jpg")
_LARGEST_ID = 10**15  # a name or a log with a longer number is not nstd's: it sets no floor


def highest_id_on_disk(outbox: Path) -> int:
    """The highest job id the outbox's own files carry (thumbnails, previews, the trash): a new job
    gets a higher one, whatever the state file remembers."""
    found = highest_id_in_trash(outbox)
    for kind in ("thumbs", "previews"):
        try:
            names = os.listdir(hidden_dir(outbox, kind))
        except OSError:
            continue
        found = max([found, *(int(m[1]) for m in map(_ID_NAME.fullmatch, names) if m)])
    return found


def _job_id(log: dict) -> int:
    try:
        job_id = int(log["job_id"])
    except (TypeError, ValueError):
        return 0
    return job_id if 0 < job_id < _LARGEST_ID else 0


def _paintings(outbox: Path, counts: dict) -> Iterator[tuple[Path, dict, float]]:
    """(image, its loss log, the image's mtime) of every result in outbox/<rule>/."""
    if not outbox.is_dir():
        return
    rules = (p for p in outbox.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith("."))
    for folder in sorted(rules):
        entries = {p.name: p for p in folder.iterdir()}
        for name, path in entries.items():
            if path.suffix in (".json", "") or name.endswith(".loss.png") or not path.is_file():
                continue
            log_file = log_path_for(path)
            if log_file.name not in entries:
                continue
            try:
                log = json.loads(log_file.read_text())
                if not all(k in log for k in NEEDED):
                    raise ValueError("not a daemon's loss log")
                yield path, log, path.stat().st_mtime
            except (OSError, ValueError):
                counts["unreadable"] += 1


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
