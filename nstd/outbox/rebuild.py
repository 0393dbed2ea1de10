"""The state file, opened for the daemon: a lock another process holds is waited out, a damaged file
is set aside and the state rebuilt from the folders, and at every start the state is checked
against the folders (nstd.outbox.reconcile).

What the folders say is enough to go on: every painting in the outbox has its loss log beside it,
naming its job (key, id, rule, style, parameters) and its photo (name and SHA-256), so it is
recorded as done again and never painted twice; a photo in failed/ has its reason beside it, a
deletion in the trash its loss log; a photo in the inbox is queued by the start-up scan, as always.
What only the state file knew is lost with it and said so (NOT_IN_THE_FOLDERS).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Callable, Optional

from nstd.config import Config
from nstd.store import DamagedStateFile, Store, StoreUnavailable, set_aside, take_lock

from .reconcile import any_painting, reconcile
from .thumbs import hidden_dir
from .trash import highest_id_in_trash

# How often the wait for a state file another process holds says that it still waits.
LOCK_MESSAGE_EVERY = 30.0
# What a rebuild cannot bring back, said where it is reported (the log, `nstd status`).
NOT_IN_THE_FOLDERS = ("a pause, re-runs and retries queued but not started, attempt counts, and the reasons of failed "
                      "re-runs (a photo's first failure is beside it in failed/)")


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
            if store.created and any_painting(config.outbox):
                _rebuild(store, config, log, "no state file (new, deleted or reset) while the outbox holds results",
                         None)
            else:
                _adopt(store, config, log)
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


def _adopt(store: Store, config: Config, log) -> None:
    found = reconcile(store, config)
    if found["results"] or found["refused"] or found["deleted"]:
        log.warning("the folders hold what the state file did not know: adopted", results=found["results"],
                    refused=found["refused"], deleted=found["deleted"], unreadable_logs=found["unreadable"])


def _rebuild(store: Store, config: Config, log, cause: str, kept: Optional[Path]) -> None:
    found = reconcile(store, config)
    store.record_rebuild({"when": time.time(), "cause": cause, "set_aside_as": str(kept) if kept else None,
                          "not_recovered": NOT_IN_THE_FOLDERS, **found})
    log.error("the state file was damaged: set aside, and the state rebuilt from the folders" if kept else
              "the state file is new but the outbox holds results: the state rebuilt from the folders",
              state=str(config.state), set_aside_as=str(kept) if kept else None, cause=cause,
              results=found["results"], refused=found["refused"], deleted=found["deleted"],
              unreadable_logs=found["unreadable"], not_recovered=NOT_IN_THE_FOLDERS)


_ID_NAME = re.compile(r"job(\d{1,15})(?:-view)?\.jpg")


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
