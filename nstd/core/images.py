"""Reading images safely, whatever people drop in a folder.

Every failure is one `InputError` naming the file and the cause. Orientation from EXIF is
applied, and all modes (palette, alpha, greyscale, CMYK, 16-bit, float) become 8-bit RGB: alpha is
composited on white, which is what a viewer shows for a transparent photo.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from .errors import InputError
from .fileids import NotRegularFile, open_regular
from .heif import decode_heif, is_heif

# 50 megapixels decoded: an 8000x6000 camera frame fits whole; a larger JPEG (50, 108, 200 MP
# phone sensors) is decoded reduced to fit (JPEG's DCT scaling, up to 1/8 a side: no full-size copy
# is ever made), and a decompression bomb does not fit even so.
DEFAULT_MAX_PIXELS = 50_000_000
MAX_PIXELS_KEY = "worker.max_pixels"
JPEG_REDUCTIONS = (1, 2, 4, 8)
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif", ".avif", ".heic",
                            ".heif", ".hif"})
OUTPUT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
SRGB = ImageCms.createProfile("sRGB")
SRGB_ICC = ImageCms.ImageCmsProfile(SRGB).tobytes()


def to_srgb(img: Image.Image) -> Image.Image:
    """A picture with an embedded ICC profile (Display P3 from a phone, Adobe RGB from a camera)
    converted to sRGB by LittleCMS, relative colorimetric: the colours a viewer shows, in the space
    the network, the thumbnails and every output use. Without a profile it is taken as sRGB."""
    icc = img.info.get("icc_profile")
    if not icc or img.mode not in ("RGB", "RGBA", "CMYK", "L"):
        return img
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        converted = ImageCms.profileToProfile(img, source, SRGB, outputMode="RGBA" if img.mode == "RGBA" else "RGB",
                                              renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC)
    except (ImageCms.PyCMSError, OSError, ValueError):
        return img  # a broken profile: the pixels as they are, as a viewer without colour management shows them
    converted.info.pop("icc_profile", None)
    return converted


# EXIF tags a painting keeps of its photo: when it was taken, and that it is sRGB. Nothing else is
# carried over (a new EXIF is written), so the position (GPS), maker notes and serial numbers of the
# camera never travel into a result, a thumbnail or the gallery.
_EXIF_IFD, _DATE_TIME, _DATE_TIME_ORIGINAL, _OFFSET_TIME_ORIGINAL, _COLOR_SPACE = 0x8769, 0x0132, 0x9003, 0x9011, 0xA001


def capture_time(img: Image.Image) -> dict | None:
    """When the photo was taken, from its EXIF: {"taken": "YYYY:MM:DD HH:MM:SS", "offset": "+01:00"}."""
    try:
        exif = img.getexif()
        inner = exif.get_ifd(_EXIF_IFD)
    except (AttributeError, KeyError, ValueError, OSError, SyntaxError):
        return None
    taken = inner.get(_DATE_TIME_ORIGINAL) or exif.get(_DATE_TIME)
    if not isinstance(taken, str) or not taken.strip("\0 "):
        return None
    offset = inner.get(_OFFSET_TIME_ORIGINAL)
    return {"taken": taken.strip("\0 ")[:19], **({"offset": offset.strip("\0 ")} if isinstance(offset, str) else {})}


def result_exif(capture: dict | None) -> bytes:
    """The EXIF a painting carries: sRGB, and its photo's capture time where known; nothing else."""
    exif = Image.Exif()
    inner = {_COLOR_SPACE: 1}
    if capture:
        inner[_DATE_TIME_ORIGINAL] = capture["taken"]
        if capture.get("offset"):
            inner[_OFFSET_TIME_ORIGINAL] = capture["offset"]
    exif[_EXIF_IFD] = inner
    return exif.tobytes()


def _reduction(size: tuple[int, int], max_pixels: int, fit: int | None) -> int:
    """The JPEG scale-down (1, 2, 4 or 8 a side) that fits max_pixels and keeps the side `fit` needs."""
    w, h = size
    needed = next((r for r in JPEG_REDUCTIONS if (w // r) * (h // r) <= max_pixels), None)
    if needed is None:
        return 0
    wanted = max((r for r in JPEG_REDUCTIONS if fit and max(w, h) // r >= fit), default=1)
    return max(needed, wanted)


def _too_many(path, w: int, h: int, max_pixels: int, words: str = "") -> InputError:
    return InputError(str(path), f"{w}x{h} is {w * h / 1e6:.3g} megapixels{words}, over the limit of "
                                 f"{max_pixels / 1e6:.3g} ({MAX_PIXELS_KEY} in the config raises it)")


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


def load_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS, fit: int | None = None) -> Image.Image:
    """Decode a whole image file into 8-bit sRGB, upright, or raise InputError. `fit`: the longest
    side the caller needs; a large JPEG is decoded reduced, down to it."""
    return _decoded(path, max_pixels, header_only=False, fit=fit)


def image_size(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """Width and height from the header alone (cheap), or InputError; the pixel limit is checked."""
    return _decoded(path, max_pixels, header_only=True)


def decode_file(f, path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS, fit: int | None = None) -> Image.Image:
    """Decode from a file already opened (by `open_regular`): the bytes checked are those decoded."""
    return _decoded(path, max_pixels, header_only=False, opened=f, fit=fit)


def _decoded(path: str | Path, max_pixels: int, header_only: bool, opened=None, fit: int | None = None):
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # Pillow's own guard is off: ours (_pillow) decides from the header, before any pixel is
            # decoded, and allows a JPEG more than the limit where its reduced decode fits it.
            Image.MAX_IMAGE_PIXELS = None
            f = opened if opened is not None else open_regular(path)
            f.seek(0)
            with f if opened is None else _kept_open(f):
                if is_heif(f.read(64)):
                    return _checked(decode_heif(f, str(path)), path, max_pixels, header_only)
                f.seek(0)
                with Image.open(f) as img:
                    return _pillow(img, path, max_pixels, header_only, fit)
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


def _pillow(img: Image.Image, path: Path, max_pixels: int, header_only: bool, fit: int | None):
    w, h = img.size
    if w < 1 or h < 1:
        raise InputError(str(path), f"image has no pixels ({w}x{h})")
    if img.format in ("JPEG", "MPO") and (w * h > max_pixels or fit):
        reduction = _reduction((w, h), max_pixels, fit)
        if reduction == 0:
            raise _too_many(path, w, h, max_pixels, ", even decoded at an eighth of its width")
        if header_only:
            return w, h
        img.seek(0)  # MPO, Ultra HDR (a gain map as the second picture): the first
        if reduction > 1:
            img.draft(img.mode if img.mode in ("RGB", "L", "CMYK") else "RGB",
                      (-(-w // reduction), -(-h // reduction)))
    elif w * h > max_pixels:
        raise _too_many(path, w, h, max_pixels)
    elif header_only:
        return w, h
    else:
        img.seek(0)  # animated and multi-picture formats: the first frame
    img.load()
    taken = capture_time(img)
    img = to_srgb(img)
    img = ImageOps.exif_transpose(img)
    rgb = _to_rgb(img)
    rgb.info = {"capture": taken} if taken else {}  # nothing else of the photo's metadata goes on
    return rgb


def _checked(img: Image.Image, path: Path, max_pixels: int, header_only: bool):
    """A picture another decoder made (HEIF), held to the same limit and brought to sRGB RGB."""
    w, h = img.size
    if w * h > max_pixels:
        raise _too_many(path, w, h, max_pixels)
    if header_only:
        return w, h
    rgb = _to_rgb(to_srgb(img))
    rgb.info = {}
    return rgb


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


def encode_image(img: Image.Image, fmt: str, exif: bytes | None = None) -> bytes:
    """Every picture nstd writes is sRGB and says so (the profile embedded), so viewers show them
    alike; `exif` (result_exif) is the only metadata it carries."""
    buf = io.BytesIO()
    options = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    img.save(buf, format=fmt, icc_profile=SRGB_ICC, **({"exif": exif} if exif else {}), **options)
    return buf.getvalue()
