"""Everything the daemon writes: outputs and loss logs, archived and quarantined inputs.

A reader of the outbox never sees a half-written file: each file is written to a hidden temp name
in the same folder, fsynced, renamed into place, and the folder fsynced. The loss log is placed
before the image, so any visible image already has its log beside it.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import stat
import time
import uuid
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from PIL import Image

from nstd.core import confine
from nstd.core.fileids import beneath
from nstd.core.images import encode_image, output_format, result_exif
from nstd.core.names import from_fs_bytes, fs_bytes

TEMP_MARK = ".nstd-tmp-"
_UNSAFE = re.compile(r"[^\w.\-]+", re.UNICODE)


def safe_component(name: str, limit: int = 100) -> str:
    """A path component that cannot escape a folder or hide itself: no separators, no leading dot."""
    cleaned = _UNSAFE.sub("_", name).strip("._") or "unnamed"
    return cleaned[:limit]


@contextmanager
def placed(path: Path):
    """Yield a temp name beside `path`; once the block has filled it, rename it into place (and
    fsync the folder). On any error the temp file is removed and `path` is untouched. The folder is
    reached beneath its configured root, never through a link (nstd.core.confine)."""
    # The temp name does not embed the final one: a 255-byte final name must still fit.
    tmp = f"{TEMP_MARK}{os.getpid()}-{uuid.uuid4().hex}"
    with confine.folder_of(path, create=True) as (dir_fd, name):
        try:
            yield confine.through(dir_fd, tmp)
            os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            try:
                os.unlink(tmp, dir_fd=dir_fd)
            except FileNotFoundError:
                pass
            raise
        os.fsync(dir_fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with placed(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def fsync_dir(folder: Path) -> None:
    confine.fsync_folder(folder)


def log_path_for(image_path: Path) -> Path:
    return image_path.with_suffix(".json")


def loss_log(result, **context) -> dict:
    """The JSON loss log written beside every output, by `stylize` and by the daemon's worker."""
    from nstd import __version__

    return {"nstd_version": __version__, **context, **result.info, "final": result.final, "trace": result.trace}


def write_result(image: Image.Image, log: dict, image_path: Path, capture: dict | None = None) -> tuple[Path, Path]:
    """Write the loss log, then the image, each atomically; the image says sRGB and when its photo
    was taken (`capture`), and nothing else of the photo's metadata. Returns (image, log) paths."""
    image_path = Path(image_path)
    data = encode_image(image, output_format(image_path), exif=result_exif(capture))
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
                confine.unlink(p, missing_ok=True)
                removed.append(p)
    return removed


def output_path(outbox: Path, rule: str, relpath: str, style: str, ext: str, key: str) -> Path:
    """outbox/<rule>/<input stem>__<style>.<ext>; another request's result there keeps its name.

    Whose a result is, is read from its loss log (the job key, which hashes the photo's content,
    and the input's name), never from a row id: a reset state file restarts the ids.
    """
    stem = safe_component(PurePosixPath(relpath).stem)
    folder = outbox / safe_component(rule)
    path = folder / f"{_fitted(stem, f'__{safe_component(style)}')}.{ext}"
    if (path.exists() or log_path_for(path).exists()) and _owner(log_path_for(path)) != (key, relpath):
        tag = hashlib.sha256(f"{key}\0{relpath}".encode("utf-8", "surrogateescape")).hexdigest()[:10]
        path = folder / f"{_fitted(stem, f'__{safe_component(style)}__{tag}')}.{ext}"
    return path


# The longest name made beside a result (its loss plot); the image's and the log's are shorter.
LONGEST_BESIDE = ".loss.png"


def _fitted(stem: str, rest: str) -> str:
    """A result's name without its suffix, the photo's stem cut (in bytes, not characters: 写 is
    three) so that every file beside it fits NAME_MAX; a cut stem gets a hash, so that two cut
    names stay distinct."""
    return fit_name(stem, rest + LONGEST_BESIDE)[:-len(LONGEST_BESIDE)]


def _owner(log: Path) -> tuple | None:
    try:
        data = json.loads(log.read_text())
        return data.get("job_key"), data.get("input")
    except (OSError, ValueError, AttributeError):
        return None


def result_exists(image: Path, key: str, relpath: str) -> bool:
    """True if this request's image and log are both in place (a crash came after writing them)."""
    return image.is_file() and _owner(log_path_for(image)) == (key, relpath)


def probe_writable(folder: Path) -> None:
    """Raise OSError now, rather than after an hour of painting, if results cannot be written here."""
    atomic_write_bytes(folder / f"{TEMP_MARK}probe", b"")
    confine.unlink(folder / f"{TEMP_MARK}probe")


def link_or_copy(src: Path, dest: Path) -> None:
    """Put src's bytes at dest atomically: a hard link where the file system allows, else a copy."""
    with placed(dest) as tmp:
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())


class LeavesFolder(OSError, ValueError):
    """A name that would lead out of its folder (`..`, or a link in the way): never written."""


def confined(root: Path, relpath: str) -> Path:
    """root/relpath, refusing any relpath that would leave root."""
    target = (root / relpath).resolve()
    if not target.is_relative_to(root.resolve()):
        raise LeavesFolder(errno.EXDEV, f"leaves {root}: not written", relpath)
    return target


NAME_MAX = 255
ERROR_SUFFIX = ".error.json"


def fit_name(stem: str, suffix: str) -> str:
    """stem + suffix in at most NAME_MAX bytes; a cut stem gets a hash so that names stay distinct."""
    name = stem + suffix
    if len(fs_bytes(name)) <= NAME_MAX:
        return name
    tag = "~" + hashlib.sha256(fs_bytes(stem)).hexdigest()[:8]
    budget = NAME_MAX - len(fs_bytes(tag + suffix))
    cut = from_fs_bytes(fs_bytes(stem)[:budget])  # names are bytes: a cut mid-character is still a name
    return cut + tag + suffix


def unique_path(path: Path) -> Path:
    """path, or a sibling with a time stamp if taken, short enough to leave room for .error.json."""
    stem, suffix = path.stem, path.suffix
    candidate = path.with_name(fit_name(stem, suffix + ERROR_SUFFIX)[:-len(ERROR_SUFFIX)])
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(10_000):
        if not candidate.exists() and not candidate.is_symlink():
            return candidate
        candidate = path.with_name(fit_name(f"{stem}.{stamp}-{n + 1}", suffix + ERROR_SUFFIX)[:-len(ERROR_SUFFIX)])
    raise FileExistsError(path)


def move_input(src: Path, root: Path, relpath: str, report: dict | None = None,
               src_root: Path | None = None) -> Path:
    """Move an inbox file (or a symlink itself, never its target) to root/relpath, renamed on clash.

    `src_root` is the configured folder `src` lies in: it is reached from there without following a
    link on the way (see nstd.core.fileids.beneath). With a report, `<name>.error.json` is written
    first, so a crash cannot leave a quarantined file without its reason (at worst a reason whose
    file is still in the inbox, to be redone).
    """
    dest = unique_path(confined(root, relpath))
    if report is not None:
        write_error_json(dest, report)
    _move(src, dest, src_root if src_root is not None else src.parent)
    fsync_dir(dest.parent)
    return dest


def remove_input(src: Path, src_root: Path) -> None:
    """Delete an input (after_success: delete), reached from its folder without following a link."""
    with beneath(src_root, src.relative_to(src_root).as_posix()) as (dir_fd, name):
        os.unlink(name, dir_fd=dir_fd)


def _move(src: Path, dest: Path, src_root: Path) -> None:
    """Rename; across file systems copy a regular file, re-make a link, drop a pipe (it holds no data).

    Never shutil.move on anything else: it would follow a link or block reading a FIFO.
    """
    with beneath(src_root, src.relative_to(src_root).as_posix()) as (dir_fd, name):
        try:
            with confine.folder_of(dest, create=True) as (dest_fd, dest_name):
                os.rename(name, dest_name, src_dir_fd=dir_fd, dst_dir_fd=dest_fd)
            return
        except OSError as e:
            if e.errno != errno.EXDEV:
                raise
        mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
        if stat.S_ISREG(mode):
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
            # Under a temp name, renamed once whole: a full disk midway leaves no half photo there.
            with os.fdopen(fd, "rb") as source, placed(dest) as tmp, open(tmp, "xb") as target:
                shutil.copyfileobj(source, target)
                target.flush()
                os.fsync(target.fileno())
        elif stat.S_ISLNK(mode):
            with confine.folder_of(dest, create=True) as (dest_fd, dest_name):
                os.symlink(os.readlink(name, dir_fd=dir_fd), dest_name, dir_fd=dest_fd)
        os.unlink(name, dir_fd=dir_fd)


def error_json_path(quarantined: Path) -> Path:
    return quarantined.with_name(quarantined.name + ERROR_SUFFIX)


def write_error_json(quarantined: Path, report: dict) -> Path:
    path = error_json_path(quarantined)
    atomic_write_bytes(path, json.dumps(report, indent=1, default=str).encode())
    return path


def return_to_inbox(quarantined: Path, inbox: Path, relpath: str) -> Path:
    """A refused input back under its inbox name (for `nstd retry`); its reason file is removed."""
    dest = confined(inbox, relpath)
    if dest.exists() or dest.is_symlink():
        raise FileExistsError(17, f"{dest} is taken", str(dest))
    _move(quarantined, dest, quarantined.parent)
    confine.unlink(error_json_path(quarantined), missing_ok=True)
    return dest
