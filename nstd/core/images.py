"""Reading images safely, whatever people drop in a folder.

Every failure is one `InputError` naming the file and the cause. Orientation from EXIF is
applied, and all modes (palette, alpha, greyscale, CMYK, 16-bit, float) become 8-bit RGB: alpha is
composited on white, which is what a viewer shows for a transparent photo.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import InputError
from .fileids import NotRegularFile, open_regular

# 50 megapixels: a 8000x6000 camera frame fits, a decompression bomb does not.
DEFAULT_MAX_PIXELS = 50_000_000
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif"})
OUTPUT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16/32-bit greyscale: scale the range down rather than clip it the way convert('L') does.
        lo, hi = img.getextrema()
        scale = 255.0 / max(hi - lo, 1)
        img = img.point(lambda v: (v - lo) * scale).convert("L")
    elif img.mode == "F":
        lo, hi = img.getextrema()
        img = img.point(lambda v: (v - lo) * 255.0 / max(hi - lo, 1e-12)).convert("L")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("LA", "PA", "RGBa", "La"):
        img = img.convert("RGBA")
    if img.mode == "RGBA":
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img)
    return img.convert("RGB")


def load_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode a whole image file into 8-bit RGB, upright, or raise InputError."""
    return _decoded(path, max_pixels, header_only=False)


def image_size(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """Width and height from the header alone (cheap), or InputError; the pixel limit is checked."""
    return _decoded(path, max_pixels, header_only=True)


def decode_file(f, path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode from a file already opened (by `open_regular`): the bytes checked are those decoded."""
    return _decoded(path, max_pixels, header_only=False, opened=f)


def _decoded(path: str | Path, max_pixels: int, header_only: bool, opened=None):
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            f = opened if opened is not None else open_regular(path)
            if opened is not None:
                f.seek(0)
            with f if opened is None else _kept_open(f), Image.open(f) as img:
                w, h = img.size
                if w * h > max_pixels:
                    raise InputError(str(path), f"{w}x{h} is {w * h / 1e6:.3g} megapixels, over the "
                                                f"limit of {max_pixels / 1e6:.3g}")
                if w < 1 or h < 1:
                    raise InputError(str(path), f"image has no pixels ({w}x{h})")
                if header_only:
                    return w, h
                img.seek(0)  # animated formats: the first frame
                img.load()
                img = ImageOps.exif_transpose(img)
                return _to_rgb(img)
    except InputError:
        raise
    except NotRegularFile as e:
        raise InputError(str(path), e.strerror) from None
    except FileNotFoundError:
        raise InputError(str(path), "file not found") from None
    except IsADirectoryError:
        raise InputError(str(path), "is a directory, not an image") from None
    except UnidentifiedImageError:
        raise InputError(str(path), "not an image file Pillow can read") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise InputError(str(path), f"decompression bomb refused ({e})") from None
    except (OSError, SyntaxError, ValueError) as e:
        # Pillow reports truncated and corrupt data as OSError ("image file is truncated"),
        # broken PNG chunks as SyntaxError.
        raise InputError(str(path), f"corrupt or truncated image ({e})") from None


class _kept_open:
    """A context that leaves the caller's file open."""

    def __init__(self, f):
        self.f = f

    def __enter__(self):
        return self.f

    def __exit__(self, *exc):
        return False


def output_format(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        raise InputError(str(path), f"unsupported output type {suffix!r}; use "
                                    f"{', '.join(sorted(OUTPUT_FORMATS))}")
    return OUTPUT_FORMATS[suffix]


def encode_image(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    options = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    img.save(buf, format=fmt, **options)
    return buf.getvalue()
