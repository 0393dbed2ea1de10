"""Whatever lands in the inbox ends processed or in failed/ with a reason; nothing escapes the folders."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, make_content, make_style, wait_for, write_config
from nstd.outbox.files import confined, output_path, safe_component

pytestmark = pytest.mark.slow


def encoded(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def bomb_png(w: int, h: int) -> bytes:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def exif_rotated() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6
    return encoded(make_content((60, 20)), "JPEG", exif=exif.tobytes())


def variant(seed: int) -> Image.Image:
    img = make_content((40, 30), seed)
    img.putpixel((0, 0), (seed * 37 % 256, seed * 91 % 256, 7))
    return img


def palette_with_alpha() -> bytes:
    p = variant(5).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    return encoded(p, "PNG", transparency=0)


def sixteen_bit() -> bytes:
    return encoded(Image.fromarray((np.linspace(0, 65535, 40 * 30).reshape(30, 40)).astype(np.uint16)), "PNG")


REFUSED = {
    "empty.jpg": (b"", "not an image"),
    "random.jpg": (os.urandom(3000), "not an image"),
    "text.png": (b"just some words\n" * 50, "not an image"),
    "truncated.jpg": (encoded(make_content((200, 150)), "JPEG")[:700], "truncated"),
    "truncated.png": (encoded(make_content((200, 150)), "PNG")[:300], "truncated"),
    "bomb.png": (bomb_png(60000, 60000), "pixels"),
}
LONG_NAME = "l" * 251 + ".png"
# 244 bytes in 80 characters: a cut by characters leaves it too long once the painting's suffix is on.
LONG_WIDE_NAME = "写" * 80 + ".png"
PROCESSED = {
    "one_pixel.png": lambda: encoded(Image.new("RGB", (1, 1), (200, 10, 10)), "PNG"),
    "very_wide.png": lambda: encoded(Image.new("RGB", (10000, 2), (10, 200, 10)), "PNG"),
    "cmyk.jpg": lambda: encoded(variant(1).convert("CMYK"), "JPEG"),
    "sixteen_bit.png": sixteen_bit,
    "palette_alpha.png": palette_with_alpha,
    "gray_alpha.png": lambda: encoded(variant(2).convert("LA"), "PNG"),
    "animated.gif": lambda: encoded(variant(3), "GIF", save_all=True, append_images=[variant(4)]),
    "photo.webp": lambda: encoded(variant(6), "WEBP"),
    "photo.tiff": lambda: encoded(variant(7), "TIFF"),
    "rotated.jpg": exif_rotated,
    "with space.png": lambda: encoded(variant(8), "PNG"),
    "ünïcødé 写真.png": lambda: encoded(variant(9), "PNG"),
    "new\nline.png": lambda: encoded(variant(10), "PNG"),
    LONG_NAME: lambda: encoded(variant(11), "PNG"),
    LONG_WIDE_NAME: lambda: encoded(variant(14), "PNG"),
    "x.jpg/inside.png": lambda: encoded(variant(12), "PNG"),  # a folder named like an image
}


DEEP_PART = "d" * 200


def make_deep_photo(inbox: Path, depth: int = 22) -> None:
    """inbox/ddd.../ddd.../photo.png, past PATH_MAX: made through folder descriptors, as a tool would."""
    fd = os.open(inbox, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir(DEEP_PART, dir_fd=fd)
            child = os.open(DEEP_PART, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        photo = os.open("photo.png", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(photo, encoded(variant(13), "PNG"))
        os.close(photo)
    finally:
        os.close(fd)


@pytest.fixture(scope="module")
def outcome(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    config = write_config(folder, watch={"settle_seconds": 0.3, "decode_retries": 0})
    inbox = folder / "inbox"
    inbox.mkdir()
    for name, (data, _) in REFUSED.items():
        (inbox / name).write_bytes(data)
    for name, make in PROCESSED.items():
        (inbox / name).parent.mkdir(parents=True, exist_ok=True)
        (inbox / name).write_bytes(make())
    (inbox / "passwd.png").symlink_to("/etc/passwd")
    make_deep_photo(inbox)
    r = subprocess.run([sys.executable, "-m", "nstd", "--log-json", "run", "--config", str(config), "--until-idle"],
                       capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return folder, r.stderr


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_bad_files_are_quarantined_with_a_clear_reason(outcome, name):
    folder, _ = outcome
    report = json.loads((folder / "failed" / f"{name}.error.json").read_text())
    assert (folder / "failed" / name).is_file()
    assert report["input"] == name and REFUSED[name][1] in report["error"]


def test_a_symlink_out_of_the_inbox_is_refused_and_never_read(outcome):
    folder, _ = outcome
    assert (folder / "failed" / "passwd.png").is_symlink()
    assert "symbolic link" in json.loads((folder / "failed" / "passwd.png.error.json").read_text())["error"]
    assert Path("/etc/passwd").exists()


def test_a_path_past_path_max_is_refused_with_the_reason_not_ignored(outcome):
    folder, log = outcome
    (report,) = [p for p in (folder / "failed").iterdir()
                 if p.name.startswith("ddd") and p.name.endswith(".error.json")]
    cause = json.loads(report.read_text())["error"]
    assert "over the system's limit" in cause and "PATH_MAX" in cause
    moved = report.with_name(report.name[:-len(".error.json")])
    assert moved.is_dir() and len(moved.name) <= 180          # the whole deep folder, under a short name
    assert any('"event": "input refused"' in line and "PATH_MAX" in line for line in log.splitlines())


@pytest.mark.parametrize("name", sorted(PROCESSED))
def test_odd_but_valid_files_are_converted_and_processed(outcome, name):
    folder, _ = outcome
    db = sqlite3.connect(folder / ".nstd" / "state.sqlite")
    row = db.execute("SELECT jobs.state, json_extract(outputs, '$.image') FROM jobs JOIN inputs ON "
                     "inputs.id = input_id WHERE relpath = ?", (name,)).fetchone()
    db.close()
    assert row is not None and row[0] == "done", name
    result = Path(row[1])
    assert result.is_file() and result.resolve().is_relative_to((folder / "outbox").resolve())
    assert len(result.name.encode()) <= 255
    if name == "rotated.jpg":
        assert Image.open(result).height > Image.open(result).width  # upright, as the viewer shows it


def test_inbox_is_empty_and_everything_is_accounted_for(outcome):
    folder, _ = outcome
    left = [p for p in (folder / "inbox").rglob("*") if p.is_file() or p.is_symlink()]
    assert [p.name for p in left] == [".nstd-daemon.lock"]                  # the daemon's own lock alone
    archived = [p for p in (folder / "archive").rglob("*") if p.is_file()]
    assert len(archived) == len(PROCESSED)
    assert (folder / "archive" / "x.jpg" / "inside.png").is_file()
    (long_one,) = [p for p in archived if p.name.startswith("l" * 100)]
    assert long_one.suffix == ".png" and len(long_one.name) <= 255 - len(".error.json")  # room for a reason


def test_style_missing_or_corrupt_at_run_time_fails_the_job_with_the_style_named(tmp_path, daemons):
    config = write_config(tmp_path, rules='  - match: "gone/*"\n    style: gone\n'
                                          '  - match: "broken/*"\n    style: broken\n')
    for name in ("gone", "broken"):
        make_style().save(tmp_path / "styles" / f"{name}.png")
    text = config.read_text().replace("styles:\n", "styles:\n  gone: ./styles/gone.png\n"
                                                  "  broken: ./styles/broken.png\n")
    config.write_text(text)
    d = daemons(config)
    d.wait_ready()
    (tmp_path / "styles" / "gone.png").unlink()
    (tmp_path / "styles" / "broken.png").write_bytes(b"garbage")
    for folder in ("gone", "broken"):
        (tmp_path / "inbox" / folder).mkdir(parents=True, exist_ok=True)  # made by the daemon: its rules name it
        (tmp_path / "inbox" / folder / "photo.png").write_bytes(encoded(variant(1), "PNG"))
    for folder, cause in (("gone", "file not found"), ("broken", "not an image")):
        report = tmp_path / "failed" / folder / "photo.png.error.json"
        wait_for(report.exists, 60, what=f"the {folder} style failure")
        error = json.loads(report.read_text())["error"]
        assert f"{folder}.png" in error and cause in error
    assert d.proc.poll() is None


@pytest.mark.parametrize("relpath", ["../escape.png", "a/../../escape.png", "/etc/passwd"])
def test_no_path_can_leave_its_folder(tmp_path, relpath):
    with pytest.raises(ValueError):
        confined(tmp_path / "archive", relpath)


@pytest.mark.parametrize("rule, relpath, style", [
    ("../../etc", "../../x.png", "../s"), (".hidden", ".x.png", "/abs"), ("a/b", "sub/dir/y\n.png", "s t"),
])
def test_output_names_stay_inside_the_outbox_and_visible(tmp_path, rule, relpath, style):
    out = output_path(tmp_path / "outbox", rule, relpath, style, "png", "key")
    assert out.resolve().parent.parent == (tmp_path / "outbox").resolve()
    assert not out.name.startswith(".") and not out.parent.name.startswith(".")
    assert safe_component("..") == "unnamed"
