"""Filing: where an input goes once all its jobs are over (archive, failed/, deleted or kept).

Each input is filed on its own: one that cannot be moved (a name clash in the archive, a name too
long there) waits with its own backoff while every other input is filed, and after `MAX_TRIES`
(or at once, for a name too long) it ends in failed/ under a name that fits, with the reason; if
even that is impossible, the input stays in the inbox, marked 'stuck' with the reason, and is not
taken again. A fault of the machine (the archive read-only, full, or no longer writable by nstd)
is waited out for as long as it lasts: the photo is filed once the folder is well.
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import shlex
import stat
from pathlib import Path
from typing import Callable, Optional

from nstd.config import Config
from nstd.core import confine
from nstd.core.backoff import Backoff
from nstd.core.fileids import file_sha256, locate, present
from nstd.core.humane import first_line, now_iso, size_words
from nstd.core.livephotos import companion_videos
from nstd.core.mounts import MountWatch
from nstd.core.jobs import JobState
from nstd.ops.folderfaults import FolderFaults
from nstd.store import Input, Job, Store

from .files import (LeavesFolder, confined, error_json_path, move_input, remove_input, safe_component, unique_path,
                    write_error_json)

MAX_TRIES = 8          # with doubling waits from 1 s: about four minutes of trying
PERMANENT = {errno.ENAMETOOLONG}
# The machine's fault, not the photo's: a folder remounted read-only, a full disk or quota. The
# input waits, however long, and is filed once the folder is well; failed/ would be a lie.
MACHINE = {errno.EROFS, errno.ENOSPC, errno.EDQUOT}
RECHECK_STUCK_SECONDS = 30.0


class Filing:
    def __init__(self, config: Config, store: Store, log, on_filed: Callable[[], None],
                 on_replaced: Callable[[str], None], folder_faults: Optional[FolderFaults] = None):
        self.config, self.store, self.log = config, store, log
        self.on_filed, self.on_replaced = on_filed, on_replaced
        self.folders = folder_faults or FolderFaults(store, log)
        self.waiting: dict[int, Backoff] = {}
        self.blocked_by: dict[int, str] = {}   # input id -> the folder whose fault it waits out
        self.stuck_checked = float("-inf")
        self.mounts = MountWatch(*config.input_folders)

    def tick(self, now: float) -> None:
        if now - self.stuck_checked >= RECHECK_STUCK_SECONDS:
            self.stuck_checked = now
            self._recheck_stuck()
        for inp, jobs in self.store.settled_inputs():
            backoff = self.waiting.get(inp.id)
            if backoff is not None and not backoff.due(now):
                continue
            try:
                self._file(inp, jobs)
            except OSError as e:
                self._failed_to_file(inp, jobs, e, now)
            else:
                self.waiting.pop(inp.id, None)
                if inp.id in self.blocked_by:
                    self.folders.fine(self.blocked_by.pop(inp.id))
                self.on_filed()

    def _root_of(self, src: Path) -> Path:
        """The configured folder the input lies in: every open, move and delete starts there."""
        return locate(src, self.config.input_folders)[0]   # NotRegularFile outside them all

    def _file(self, inp: Input, jobs: list[Job]) -> None:
        c = self.config
        src = Path(inp.path)
        root = self._root_of(src)
        failures = [j for j in jobs if j.state is JobState.FAILED]
        ours = file_sha256(src, root) == inp.sha256
        if not ours and not present(src, root) and self.mounts.gone(root):
            # Not gone: its folder's share or disk is (unmounted, pulled). The photo waits for it.
            raise FileNotFoundError(errno.ENOENT, f"{root} is gone or on another file system than at start",
                                    str(src))
        if present(src, root) and not ours:
            # Replaced while queued: the new content is an input of its own; leave it be.
            self.store.close_input(inp.id, "superseded", str(src))
            self.on_replaced(str(src))
            self.log.info("input replaced while queued: the new version is processed separately",
                          input=inp.relpath)
        elif failures:
            cause = "; ".join(f"{j.style}: {first_line(j.error)}" for j in failures)
            report = failure_report(inp, jobs, cause)
            if ours and src.is_relative_to(c.archive):
                # A re-run of a painted photo failed: the photo and its first painting stay where they are.
                self.store.close_input(inp.id, "archived", str(src))
                self.log.warning("re-run failed; the photo stays in the archive", input=inp.relpath, cause=cause)
                return
            if ours and src.is_relative_to(c.failed):
                dest = src  # failed again: it keeps its place and its one reason, rewritten
                write_error_json(dest, report)
            elif ours:
                dest = move_input(src, c.failed, inp.relpath, report, src_root=root)
            else:  # the file vanished: its reason is still worth keeping
                dest = unique_path(confined(c.failed, inp.relpath))  # never over another reason
                write_error_json(dest, report)
            self.store.close_input(inp.id, "failed", str(dest), cause)
            self.log.warning("input failed", input=inp.relpath, moved_to=str(dest), cause=cause)
        elif not ours:
            renamed = self.store.open_twin(inp.id, inp.sha256)
            self.store.close_input(inp.id, "renamed" if renamed else "gone", renamed.path if renamed else str(src))
        elif c.after_success == "delete":
            remove_input(src, root)
            self.store.close_input(inp.id, "deleted", str(src))
        elif c.after_success == "keep":
            self.store.close_input(inp.id, "kept", str(src))
        elif src.is_relative_to(c.archive):
            self.store.close_input(inp.id, "archived", str(src))  # painted again (nstd rerun): it stays
        else:
            dest = move_input(src, c.archive, inp.relpath, src_root=root)
            if src.is_relative_to(c.failed):  # a failed photo, rerun and painted: no longer failed
                confine.unlink(error_json_path(src), missing_ok=True)
            self.store.close_input(inp.id, "archived", str(dest))
            self._file_videos_with(src, root, dest)
            self.log.info("input archived", input=inp.relpath, moved_to=str(dest))

    def _file_videos_with(self, photo: Path, root: Path, archived: Path) -> None:
        """A Live Photo's video goes to the archive beside its photo (a failure to move it leaves it
        waiting in the inbox, told as not taken: it is no photo's failure)."""
        for video in companion_videos(photo):
            rel = archived.with_name(video.name).relative_to(self.config.archive).as_posix()
            try:
                moved = move_input(video, self.config.archive, rel, src_root=root)
            except OSError as e:
                self.log.warning("the video of a Live Photo stays in the inbox", video=str(video), error=str(e))
                continue
            self.log.info("the video of a Live Photo archived beside its photo", video=str(video),
                          moved_to=str(moved))

    def _machine_fault(self, error: OSError) -> bool:
        if error.errno in MACHINE:
            return True
        if error.errno == errno.ENOENT and any(self.mounts.gone(f) for f in self.config.input_folders):
            return True  # the photo seems gone because its folder's share or disk is
        # Permission denied with the photo's own folder writable (checked before): the archive's or
        # failed/'s owner or mode changed, which no photo can cause.
        return error.errno in (errno.EACCES, errno.EPERM) and not all(
            os.access(folder, os.W_OK | os.X_OK) for folder in (self.config.archive, self.config.failed))

    def _folder_of(self, error: OSError, jobs: list[Job]) -> tuple[str, Path]:
        """Which configured folder refused the move, by the path the error names."""
        c = self.config
        named = Path(os.path.abspath(error.filename)) if error.filename else None
        for role, folder in (("archive", c.archive), ("failed", c.failed), ("inbox", c.inbox)):
            if named is not None and named.is_relative_to(folder):
                return role, folder
        return ("failed", c.failed) if any(j.state is JobState.FAILED for j in jobs) else ("archive", c.archive)

    def _recheck_stuck(self) -> None:
        """An input stuck in a folder nstd may not write is filed once someone fixes the folder."""
        for inp in self.store.stuck_inputs():
            if os.access(Path(inp.path).parent, os.W_OK | os.X_OK):
                self.store.reopen_input(inp.id)
                self.log.info("the folder of a stuck input is writable now: filing it", input=inp.relpath)

    def _failed_to_file(self, inp: Input, jobs: list[Job], error: OSError, now: float) -> None:
        folder = Path(inp.path).parent
        if error.errno in (errno.EACCES, errno.EPERM) and not os.access(folder, os.W_OK | os.X_OK):
            # No retry or failed/ can help: moving a file out needs write access to its folder.
            self.waiting.pop(inp.id, None)
            reason = unwritable_folder(folder)
            self.store.close_input(inp.id, "stuck", inp.path, reason)
            self.log.error("input painted but stuck in the inbox: its folder is not writable by nstd",
                           input=inp.relpath, reason=reason)
            return
        backoff = self.waiting.setdefault(inp.id, Backoff(1.0, 60.0))
        wait = backoff.failed(now)
        if self._machine_fault(error):
            log = self.log.error if backoff.failures == 1 else self.log.warning
            log("cannot file the input away: the folder is read-only or full, a fault of the machine, not of "
                "the photo; it waits and is filed once the folder is writable", input=inp.relpath,
                error=str(error), retry_in_s=wait, attempt=backoff.failures)
            if error.errno != errno.ENOENT:  # an inbox gone away is the recorder's to tell
                role, where = self._folder_of(error, jobs)
                self.blocked_by[inp.id] = role
                self.folders.failed(role, where, error, needs=_photo_needs(inp.path))
            return
        if error.errno not in PERMANENT and not isinstance(error, LeavesFolder) and backoff.failures < MAX_TRIES:
            self.log.error("cannot file the input away; will try again", input=inp.relpath,
                           error=str(error), retry_in_s=wait, attempt=backoff.failures)
            return
        self.waiting.pop(inp.id, None)
        cause = f"could not be filed away after its jobs ended: {error}"
        report = {**failure_report(inp, jobs, cause), "stage": "filing"}
        src = Path(inp.path)
        flat = safe_component(inp.relpath.replace("/", "__"), limit=180)
        try:
            dest = move_input(src, self.config.failed, flat, report, src_root=self._root_of(src))
        except OSError as e:
            self.store.close_input(inp.id, "stuck", str(src), f"{cause}; and not movable to failed/: {e}")
            self.log.error("input cannot be moved at all: left in the inbox and not taken again",
                           input=inp.relpath, error=str(e))
            return
        self.store.close_input(inp.id, "failed", str(dest), cause)
        self.log.error("input could not be filed: moved to failed/ with the reason", input=inp.relpath,
                       moved_to=str(dest), cause=cause)


def _photo_needs(path: str) -> str:
    try:
        return f"the photo needs {size_words(os.stat(path).st_size)}"
    except OSError:
        return ""


def failure_report(inp: Input, jobs: list[Job], cause: str) -> dict:
    return {"input": inp.relpath, "error": cause, "stage": "processing",
            "jobs": [{"job_id": j.id, "style": j.style, "state": j.state.value, "attempts": j.attempts,
                      "error": j.error} for j in jobs],
            "time": now_iso()}


def unwritable_folder(folder: Path) -> str:
    """Why nstd cannot move a file out of `folder`, and the command that fixes it."""
    me = _name(pwd.getpwuid, os.geteuid())
    try:
        st = folder.stat()
        what = f"{stat.filemode(st.st_mode)} {_name(pwd.getpwuid, st.st_uid)}:{_name(grp.getgrgid, st.st_gid)}"
    except OSError as e:
        what = f"unreadable ({e.strerror})"
    where = shlex.quote(str(folder))
    return (f"painted, but nstd (user {me}) cannot move it out of {folder}: the folder is {what} and does not "
            f"let {me} write in it. Fix: sudo setfacl -m u:{me}:rwx -m d:u:{me}:rwx {where} (or chmod g+w "
            f"{where}, its group being one {me} is in); nstd then files it by itself within a minute")


def unreadable_file(path: str, error: OSError) -> str:
    """Why nstd cannot read an inbox file, and what fixes it: usually a file moved in (`mv` keeps
    its mode, and a folder's default ACL applies only to files created in it)."""
    me = _name(pwd.getpwuid, os.geteuid())
    try:
        st = os.lstat(path)
        what = f"{stat.filemode(st.st_mode)} {_name(pwd.getpwuid, st.st_uid)}:{_name(grp.getgrgid, st.st_gid)}"
    except OSError:
        what = "of unknown mode"
    return (f"cannot read ({error.strerror}): nstd (user {me}) may not read it; it is {what}, which a file moved "
            f"in keeps (the inbox's default ACL applies only to files created there). Fix: sudo chmod g+r, or "
            f"sudo setfacl -m u:{me}:r, on the file in the failed folder, then `nstd retry` moves it back to the inbox")


def _name(lookup, number: int) -> str:
    try:
        return lookup(number)[0]
    except KeyError:
        return str(number)
