"""Decoding whatever people drop: every failure is one InputError naming the file and cause."""

from __future__ import annotations

import io
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from conftest import make_content
from nstd.core.errors import InputError
from nstd.core.images import load_image


def png_bytes(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", **kw)
    return buf.getvalue()


def bomb_png(width: int, height: int) -> bytes:
    """A valid PNG header claiming width x height pixels, a few hundred bytes on disk."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def jpeg_bytes(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", **kw)
    return buf.getvalue()


BAD = {
    "empty.jpg": (b"", "not an image"),
    "random.jpg": (os.urandom(4096), "not an image"),
    "text.png": (b"hello, this is not a picture\n" * 20, "not an image"),
    "truncated.jpg": (jpeg_bytes(make_content((200, 150)))[:600], "truncated"),
    "truncated.png": (png_bytes(make_content((200, 150)))[:300], "truncated"),
    "bomb.png": (bomb_png(60000, 60000), "pixels"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_inputs_raise_input_error_naming_file_and_cause(tmp_path, name):
    data, cause = BAD[name]
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(InputError) as info:
        load_image(path)
    assert info.value.file == str(path)
    assert cause in info.value.cause
    assert str(path) in str(info.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_image(tmp_path / "nope.jpg")
    (tmp_path / "x.jpg").mkdir()
    with pytest.raises(InputError, match="directory"):
        load_image(tmp_path / "x.jpg")


def test_pixel_limit_is_configurable(tmp_path):
    path = tmp_path / "big.png"
    Image.new("RGB", (100, 100)).save(path)
    assert load_image(path, max_pixels=10_000).size == (100, 100)
    with pytest.raises(InputError, match="over the limit"):
        load_image(path, max_pixels=9_999)


def _mode_cases():
    rgb = make_content((40, 30))
    palette = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    palette.info["transparency"] = 0
    arr16 = (np.linspace(0, 65535, 40 * 30).reshape(30, 40)).astype(np.uint16)
    return {
        "cmyk.jpg": lambda p: rgb.convert("CMYK").save(p, "JPEG"),
        "gray16.png": lambda p: Image.fromarray(arr16).save(p),
        "palette_alpha.png": lambda p: palette.save(p, transparency=0),
        "gray_alpha.png": lambda p: rgb.convert("LA").save(p),
        "rgba.png": lambda p: rgb.convert("RGBA").save(p),
        "animated.gif": lambda p: rgb.save(p, save_all=True, append_images=[rgb.rotate(90)], duration=100),
        "photo.webp": lambda p: rgb.save(p, "WEBP"),
        "photo.tiff": lambda p: rgb.save(p, "TIFF"),
        "gray.jpg": lambda p: rgb.convert("L").save(p, "JPEG"),
        "float.tiff": lambda p: Image.fromarray(arr16.astype(np.float32)).save(p),
    }


@pytest.mark.parametrize("name", sorted(_mode_cases()))
def test_odd_modes_become_8bit_rgb(tmp_path, name):
    path = tmp_path / name
    _mode_cases()[name](path)
    img = load_image(path)
    assert img.mode == "RGB" and img.size == (40, 30)
    assert np.asarray(img).std() > 5  # something survived the conversion, not a flat image


def test_sixteen_bit_range_is_scaled_not_clipped(tmp_path):
    arr = np.linspace(0, 65535, 40 * 30).reshape(30, 40).astype(np.uint16)
    path = tmp_path / "g16.png"
    Image.fromarray(arr).save(path)
    out = np.asarray(load_image(path))[..., 0]
    assert out.min() == 0 and out.max() == 255 and len(np.unique(out)) > 100


def test_transparent_pixels_become_white(tmp_path):
    img = Image.new("RGBA", (10, 10), (255, 0, 0, 0))
    path = tmp_path / "clear.png"
    img.save(path)
    assert np.asarray(load_image(path))[0, 0].tolist() == [255, 255, 255]


def test_exif_rotation_is_applied(tmp_path):
    wide = make_content((60, 20))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    path = tmp_path / "rotated.jpg"
    wide.save(path, exif=exif.tobytes())
    assert load_image(path).size == (20, 60)


def test_a_named_pipe_or_a_symlink_is_refused_without_blocking(tmp_path):
    import os
    import threading
    from nstd.core.fileids import file_sha256
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    link = tmp_path / "link.png"
    link.symlink_to(tmp_path / "nowhere.png")
    results = {}

    def read_them():  # in a thread, so that a regression hangs the thread, not the test run
        for name, path in (("fifo", fifo), ("link", link)):
            try:
                load_image(path)
            except InputError as e:
                results[name] = e.cause
        results["hash"] = file_sha256(fifo)

    t = threading.Thread(target=read_them, daemon=True)
    t.start()
    t.join(10)
    assert results == {"fifo": "a named pipe, not a regular file",
                       "link": "a symbolic link: never followed", "hash": None}
