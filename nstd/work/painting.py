"""Painting one job: the code the local worker child and the remote worker (`nstd worker`) share.

From a job order to the result image, loss log, plot and thumbnails in the outbox, reporting
Progress, then Done or Failed, through a callable: a pipe to the daemon, or a Redis queue.
A result already in place (a crash after writing it, a job delivered twice) is reported as done
without painting again.
"""

from __future__ import annotations

import socket
import time
import traceback
from pathlib import Path
from typing import Callable, Optional

from .protocol import CANNOT_WRITE, Done, Failed, JobOrder, Progress, past_time_limit

HOST = socket.gethostname()


class Abandoned(Exception):
    """Nobody waits for this job any more (the daemon that asked for it is gone)."""


class PastTimeLimit(Exception):
    """The job ran past its time limit (worker.job_timeout_minutes)."""


_STYLE_IMAGES: dict[str, object] = {}  # decoded style images by content hash: a 49 MP style once
_STYLE_CACHE_SIZE = 4


def _style_image(path: str, max_pixels: int):
    """(content hash, decoded image) of a style file: what is painted with is what is recorded."""
    from nstd.core.errors import InputError
    from nstd.core.fileids import known_identity, open_regular, remember_identity, sha256_of
    from nstd.core.images import decode_file

    known = known_identity(path)  # None when the file's stamp changed: read (once) below
    if known is None or known not in _STYLE_IMAGES:
        try:
            with open_regular(path) as f:
                known = sha256_of(f)
                remember_identity(path, f, known)
                image = decode_file(f, path, max_pixels)
        except OSError as e:  # the style's fault, never to be reported as the photo's
            raise InputError(path, "file not found" if isinstance(e, FileNotFoundError)
                             else f"cannot read ({e.strerror or e})") from None
        if len(_STYLE_IMAGES) >= _STYLE_CACHE_SIZE:
            _STYLE_IMAGES.pop(next(iter(_STYLE_IMAGES)))
        _STYLE_IMAGES[known] = image
    return known, _STYLE_IMAGES[known]


def paint(engine, job: JobOrder, max_pixels: int, send: Callable[[object], None],
          still_wanted: Callable[[], bool] = lambda: True) -> None:
    """Paint one job and report through `send`: Progress while painting, then Done or Failed.

    `still_wanted` is asked at each progress step; False (the daemon is gone) raises Abandoned.
    """
    import torch

    from nstd.core import confine
    from nstd.core.errors import InputError
    from nstd.core.fileids import NotRegularFile, open_regular, sha256_of
    from nstd.core.images import decode_file
    from nstd.core.names import shown
    from nstd.engine import EngineError, StyleImage, TransferParams
    from nstd.outbox.files import loss_log, result_exists, write_result
    from nstd.outbox.lossplot import write_loss_plot
    from nstd.outbox.thumbs import VIEW_SIDE, preview_path, write_jpeg, write_thumbnails

    job_id = job.id
    image_path = Path(job.output)
    outbox = Path(job.outbox)
    confine.confine_to(outbox)  # on a worker host too: its writes stay beneath the outbox it was given
    preview_every = job.preview_every

    def result_in_place() -> bool:
        if not result_exists(image_path, job.key, job.relpath):
            return False
        send(Done(job_id, {"image": str(image_path), "log": str(image_path.with_suffix(".json")),
                           "recovered": True}))
        return True

    if result_in_place():  # a crash came between writing the result and recording it: done already
        return
    last_sent = [0.0]
    deadline = time.monotonic() + job.timeout_s if job.timeout_s else None
    last_loss: list[Optional[float]] = [None]  # the trace records losses every log_every steps only

    def progress(p) -> None:
        if not still_wanted():
            raise Abandoned()
        if deadline is not None and time.monotonic() > deadline:
            raise PastTimeLimit()
        if preview_every and p.done % preview_every == 0 and p.snapshot:
            try:
                write_jpeg(p.snapshot(), preview_path(outbox, job_id), side=512)
            except OSError:
                pass  # a preview is a courtesy; a full disk shows up when the result is written
        if p.losses:
            last_loss[0] = p.losses["total"]
        now = time.monotonic()
        if now - last_sent[0] >= 1.0 or p.done == p.total:
            last_sent[0] = now
            send(Progress(job_id, {"done": p.done, "total": p.total, "estimated": p.estimated,
                                            "percent": round(100 * p.fraction, 1),
                                            "it_per_s": round(p.iterations_per_second, 3),
                                            "eta_s": round(p.eta_seconds, 1) if p.eta_seconds is not None
                                            else None,
                                            "loss": last_loss[0],
                                            "scale": f"{p.level + 1}/{p.levels}",
                                            "host": HOST}))

    try:
        # Opened from its folder without following a link anywhere on the way, hashed and decoded
        # from the one open file: the bytes checked are the bytes painted.
        with open_regular(job.input, job.root or None) as f:
            if sha256_of(f) != job.sha256:
                send(Failed(job_id, "the input was replaced after it was queued; the new version is queued "
                                    "on its own", permanent=True))
                return
            # A 200 MP phone photo is decoded no larger than the painting and the viewer need.
            size = job.params.get("size")
            content = decode_file(f, job.input, max_pixels, fit=max(size, VIEW_SIDE) if isinstance(size, int) else None)
        styles, style_files = [], []
        for ref in job.images:
            # By content: a style replaced by another picture (same size, same mtime) is noticed.
            key, image = _style_image(ref["path"], max_pixels)
            styles.append(StyleImage(image, ref["weight"], f"sha256:{key}"))
            style_files.append({**ref, "sha256": key})
        params = TransferParams(**{k: tuple(v) if isinstance(v, list) else v for k, v in job.params.items()})
        result = engine.run(content, styles, params, progress=progress)
        capture = content.info.get("capture")
        log = loss_log(result, job_id=job_id, job_key=job.key, input=job.relpath, input_sha256=job.sha256,
                       **({"photo_taken": capture} if capture else {}),
                       rule=job.rule, style=job.style, style_files=style_files)
        if result_in_place():
            # Another copy of this job finished first: this host froze past its lease and the job
            # was painted elsewhere meanwhile. The first result stands; this one is not written
            # over it (its log would no longer match its image). Two copies ending within the
            # same few milliseconds could still both write: the same request, either result whole.
            confine.unlink(preview_path(outbox, job_id), missing_ok=True)
            return
        try:
            # Plot and thumbnails first: once the image and log are in place the job counts as done.
            sizes = tuple(_size_label(s["size"]) for s in result.info.get("schedule", ()))
            plot = write_loss_plot(result.trace, image_path, title=f"{shown(job.relpath)} / {job.style}", sizes=sizes)
            thumbs = write_thumbnails(outbox, job_id, job.sha256, content,
                                      [(s.key, s.image) for s in styles],
                                      result.image)
            image, log_file = write_result(result.image, log, image_path, capture)
            confine.unlink(preview_path(outbox, job_id), missing_ok=True)
        except OSError as e:
            # Outbox not writable, disk full: the job is fine, the place is not. Not an attempt.
            send(Failed(job_id, f"{CANNOT_WRITE}{image_path.parent}: {e}", permanent=False,
                             environmental=True))
            return
    except Abandoned:
        raise
    except PastTimeLimit:
        send(Failed(job_id, past_time_limit(job.timeout_s), permanent=False))
    except FileNotFoundError:
        send(Failed(job_id, f"{job.input}: the input file is gone", permanent=True))
    except NotRegularFile as e:  # a link swapped in for the photo or a folder on its way
        send(Failed(job_id, f"{job.input}: {e.strerror}", permanent=True))
    except (InputError, EngineError) as e:
        send(Failed(job_id, str(e), permanent=True))
    except torch.OutOfMemoryError as e:
        send(Failed(job_id, f"out of memory: {e}", permanent=False))
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception as e:  # one job's surprise must not end the worker: report, retry later
        send(Failed(job_id, f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=5)}", permanent=False))
    else:
        final = {k: v for k, v in result.final.items() if k != "style_layers"}
        send(Done(job_id, {"image": str(image), "log": str(log_file), "plot": str(plot), "thumbs": thumbs,
                                "final": final, "seconds": result.info["timings"]["total_seconds"],
                                "seconds_per_iteration": result.info["timings"].get("seconds_per_iteration"),
                                "device": result.info["device"], "precision": result.info.get("precision"),
                                "calibration": result.info.get("calibration"),
                                "output_size": result.info["output_size"],
                                "iterations": [s["iterations"] for s in result.info.get("schedule", ())]}))


def _size_label(dims) -> str:
    width, height = dims
    return f"{width}x{height}"
