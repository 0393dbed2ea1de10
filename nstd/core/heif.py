"""HEIC/HEIF photos (an iPhone's camera default since 2017, Samsung's as an option), decoded by
Debian's libheif command-line decoder (`heif-dec`, `heif-convert` in older releases; package
libheif-examples) in a process of its own.

Why a program and not pillow-heif: pillow-heif's binary wheels bundle the x265 *encoder* and are
GPLv2 as a whole; nstd only decodes. Debian's libheif decodes HEVC with libde265 (LGPL) and is
installed separately from nstd, so nstd's MIT licence holds, and a decoder crash (a hostile file)
ends that process, not the worker. libheif applies the HEIF container's own rotation and mirror
(irot, imir), which HEIF says take the place of EXIF's orientation: the picture is upright, and
EXIF's tag is not applied a second time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

from PIL import Image

from .errors import InputError

# The major or a compatible brand of an HEVC-coded HEIF file (AVIF's `avif`/`avis` are Pillow's own).
HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"}
DECODERS = ("heif-dec", "heif-convert")
DECODE_SECONDS = 120
NO_DECODER = ("a HEIC/HEIF photo, and no HEIF decoder is installed here: install Debian's libheif-examples "
              "(apt-get install libheif-examples, which brings heif-dec with the libde265 decoder), then "
              "`nstd retry` brings this photo back")


def is_heif(head: bytes) -> bool:
    """True for the start of an HEVC-coded HEIF file: an `ftyp` box naming a HEIC brand."""
    if head[4:8] != b"ftyp" or len(head) < 16:
        return False
    size = int.from_bytes(head[:4], "big")
    brands = [head[8:12]] + [head[i:i + 4] for i in range(16, min(size, len(head)) - 3, 4)]
    return any(b in HEIF_BRANDS for b in brands)


def decoder() -> str | None:
    return next((found for name in DECODERS if (found := shutil.which(name))), None)


def decode_heif(f, path: str) -> Image.Image:
    """The primary image of the HEIF file open as `f`, upright, as an RGB(A) PIL image; the decoder
    reads the very descriptor given (passed to it), never the path again."""
    tool = decoder()
    if tool is None:
        raise InputError(path, NO_DECODER)
    with tempfile.TemporaryDirectory(prefix="nstd-heif-") as folder:
        out = os.path.join(folder, "decoded.png")
        fd = f.fileno()
        try:
            done = subprocess.run([tool, "--quiet", f"/proc/self/fd/{fd}", out], pass_fds=(fd,), capture_output=True,
                                  text=True, timeout=DECODE_SECONDS)
        except subprocess.TimeoutExpired:
            raise InputError(path, f"the HEIF decoder took over {DECODE_SECONDS} s") from None
        if done.returncode != 0 or not os.path.exists(out):
            said = (done.stderr or done.stdout).strip().splitlines()
            raise InputError(path, f"corrupt or unreadable HEIF ({said[-1] if said else f'{tool} failed'})")
        with Image.open(out) as img:
            img.load()
            return img.copy()
