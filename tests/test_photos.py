"""The photos people actually have (issue 44), as real files made here: a HEIC from Debian's heif-enc,
an AVIF from Pillow, a photo tagged Adobe RGB with the profile Debian's icc-profiles-free ships, a
50-megapixel JPEG. No decoder is mocked."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageCms

from conftest import png, wait_for, write_config
from nstd.core.errors import InputError
from nstd.core.images import SRGB_ICC, encode_image, load_image
from nstd.intake.inspector import surely_not_an_image

ADOBE_RGB = Path("/usr/share/color/icc/compatibleWithAdobeRGB1998.icc")
needs_heif_enc = pytest.mark.skipif(shutil.which("heif-enc") is None,
                                    reason="Debian's libheif-examples is not installed (heif-enc, heif-dec)")


def quarters(size=(64, 48)) -> Image.Image:
    """Four flat quarters, so that a picture turned or mirrored reads wrong at each corner."""
    w, h = size
    img = Image.new("RGB", size, (200, 30, 30))
    for box, colour in (((0, 0, w // 2, h // 2), (20, 40, 220)), ((w // 2, 0, w, h // 2), (30, 200, 40)),
                        ((0, h // 2, w // 2, h), (230, 220, 30))):
        img.paste(colour, box)
    return img


def corners(img: Image.Image) -> list[tuple]:
    w, h = img.size
    return [img.getpixel((x, y)) for x, y in ((4, 4), (w - 5, 4), (4, h - 5), (w - 5, h - 5))]


def near(a, b, levels: int) -> bool:
    return all(abs(x - y) <= levels for x, y in zip(a, b))


@needs_heif_enc
def test_a_heic_from_heif_enc_is_taken_and_decoded_upright_in_its_colours(tmp_path):
    source = tmp_path / "source.png"
    quarters().save(source)
    heic = tmp_path / "IMG_0001.HEIC"
    subprocess.run(["heif-enc", "-q", "90", "-o", str(heic), str(source)], check=True, capture_output=True)
    assert surely_not_an_image(str(heic)) is None
    decoded = load_image(heic)
    assert decoded.size == (64, 48) and decoded.mode == "RGB"
    assert all(near(a, b, 12) for a, b in zip(corners(decoded), corners(quarters())))  # HEVC is lossy


def test_a_heic_without_a_decoder_is_refused_with_what_to_install(tmp_path, monkeypatch):
    import nstd.core.heif as heif
    monkeypatch.setattr(heif, "DECODERS", ("no-such-heif-decoder",))
    heic = tmp_path / "a.heic"
    heic.write_bytes(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + b"\0" * 64)   # an HEIF start: no decoder is asked
    with pytest.raises(InputError, match="install Debian's libheif-examples"):
        load_image(heic)


def test_an_avif_is_taken_and_decoded(tmp_path):
    from nstd.config import load_config
    from nstd.intake.rules import not_taken
    avif = tmp_path / "photo.avif"
    quarters().save(avif, quality=95)
    config = load_config(write_config(tmp_path))
    assert not_taken(config, "photo.avif") is None and not_taken(config, "IMG_2.heic") is None
    assert all(near(a, b, 12) for a, b in zip(corners(load_image(avif)), corners(quarters())))


@pytest.mark.skipif(not ADOBE_RGB.exists(), reason="Debian's icc-profiles-free is not installed")
def test_an_adobe_rgb_photo_is_read_in_srgb_and_every_picture_written_says_srgb(tmp_path):
    from nstd.outbox.thumbs import write_jpeg
    adobe = ImageCms.ImageCmsProfile(str(ADOBE_RGB))
    flat = Image.new("RGB", (48, 32), (40, 180, 60))                 # Adobe RGB values: a green sRGB cannot reach
    photo = tmp_path / "camera.png"
    flat.save(photo, icc_profile=adobe.tobytes())
    expected = ImageCms.profileToProfile(flat, adobe, ImageCms.createProfile("sRGB"), outputMode="RGB",
                                         renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC).getpixel((0, 0))
    assert not near(expected, (40, 180, 60), 10)                    # read as sRGB it would be far off
    decoded = load_image(photo)
    assert near(decoded.getpixel((10, 10)), expected, 2)
    thumb = write_jpeg(decoded, tmp_path / "thumb.jpg")
    with Image.open(thumb) as t:
        assert t.info.get("icc_profile") == SRGB_ICC and near(t.convert("RGB").getpixel((10, 10)), expected, 4)
    with Image.open(io.BytesIO(encode_image(decoded, "PNG"))) as result:
        assert result.info.get("icc_profile") == SRGB_ICC


def phone_exif() -> bytes:
    """What a phone writes: when (with its offset), where (GPS), which phone (serial)."""
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Phone Maker", "Phone 15"
    exif[0x8769] = {0x9003: "2026:07:14 18:05:09", 0x9011: "+02:00", 0xA431: "SERIAL-12345"}
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 30.0), 3: "E", 4: (2.0, 17.0, 40.0)}
    return exif.tobytes()


def test_a_painting_keeps_when_the_photo_was_taken_and_never_where(tmp_path):
    from nstd.outbox.files import write_result
    from nstd.outbox.thumbs import write_jpeg
    photo = tmp_path / "IMG_0007.jpg"
    quarters().save(photo, exif=phone_exif())
    decoded = load_image(photo)
    assert decoded.info == {"capture": {"taken": "2026:07:14 18:05:09", "offset": "+02:00"}}
    image, _ = write_result(decoded, {"final": {}}, tmp_path / "out" / "IMG_0007__s.png", decoded.info["capture"])
    for written in (image, write_jpeg(decoded, tmp_path / "thumb.jpg")):
        with Image.open(written) as img:
            exif = img.getexif()
            inner = exif.get_ifd(0x8769)
            assert 0x8825 not in exif and not exif.get_ifd(0x8825)          # no position
            assert 0xA431 not in inner and 0x010F not in exif                # no serial, no maker
            assert img.info.get("icc_profile") == SRGB_ICC
    with Image.open(image) as img:
        inner = img.getexif().get_ifd(0x8769)
        assert inner[0x9003] == "2026:07:14 18:05:09" and inner[0x9011] == "+02:00" and inner[0xA001] == 1


def test_a_50_megapixel_jpeg_is_decoded_reduced_and_a_bomb_is_refused_naming_the_key(tmp_path):
    big = tmp_path / "phone-50mp.jpg"
    quarters((8192, 6144)).save(big, quality=85)                    # 50.3 MP: over the default limit whole
    decoded = load_image(big, fit=1280)
    assert decoded.size == (2048, 1536)                             # a quarter a side: the side asked for, no more
    assert all(near(a, b, 8) for a, b in zip(corners(decoded), corners(quarters((2048, 1536)))))
    assert load_image(big).size == (4096, 3072)                     # without a fit: the largest within the limit
    with pytest.raises(InputError, match=r"worker\.max_pixels in the config raises it"):
        load_image(big, max_pixels=500_000)                          # even an eighth is over 0.5 MP
    tiff = tmp_path / "scan.tif"
    quarters((1200, 1000)).save(tiff)
    with pytest.raises(InputError, match=r"1200x1000 is 1\.2 megapixels, over the limit of 1 \(worker\.max_pixels"):
        load_image(tiff, max_pixels=1_000_000)                       # no reduced decode for TIFF: refused whole


@pytest.mark.slow
def test_a_50_megapixel_phone_photo_and_a_heic_dropped_in_the_inbox_are_painted(tmp_path, daemons):
    config = write_config(tmp_path)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    quarters((8192, 6144)).save(inbox / "phone.jpg", quality=85)
    names = ["phone.jpg"]
    if shutil.which("heif-enc"):
        (tmp_path / "src.png").write_bytes(png(3))
        subprocess.run(["heif-enc", "-o", str(inbox / "IMG_0002.heic"), str(tmp_path / "src.png")], check=True,
                       capture_output=True)
        names.append("IMG_0002.heic")
    d = daemons(config)
    wait_for(lambda: all((tmp_path / "archive" / n).exists() for n in names), 300, what="both painted and filed")
    assert not (tmp_path / "failed").exists() or not list((tmp_path / "failed").iterdir())
    assert (tmp_path / "outbox" / "stripes" / "phone__stripes.png").is_file()
    assert d.stop() == 0


@pytest.mark.slow
def test_nothing_dropped_is_silently_ignored(tmp_path, daemons):
    """A video, a text file, a browser's unfinished download and a photo no rule takes are each told
    once with their reason, listed by `nstd status` and counted by reason in the metric; a hidden
    file is not; one removed leaves the list. A Live Photo's video goes to the archive beside its
    photo."""
    from nstd.ops.metrics import Metrics
    from prometheus_client import generate_latest
    config = write_config(tmp_path, rules='  - match: "family/**"\n    style: stripes\n')
    inbox = tmp_path / "inbox"
    (inbox / "family").mkdir(parents=True)
    d = daemons(config)
    d.wait_ready()
    (inbox / "family" / "clip.MOV").write_bytes(b"\0\0\0\x14ftypqt  " + b"\0" * 64)
    (inbox / "family" / "IMG_1234.MOV").write_bytes(b"\0\0\0\x14ftypqt  " + b"\1" * 64)
    (inbox / "family" / "notes.txt").write_text("shopping")
    (inbox / "family" / "IMG_5.jpg.crdownload").write_bytes(b"\xff\xd8")
    (inbox / "family" / ".DS_Store").write_bytes(b"\0")
    (inbox / "elsewhere.png").write_bytes(png(1))
    (inbox / "family" / "IMG_1234.jpg").write_bytes(png(2))
    wait_for(lambda: (tmp_path / "archive" / "family" / "IMG_1234.jpg").exists(), 120, what="the photo painted")
    wait_for(lambda: (tmp_path / "archive" / "family" / "IMG_1234.MOV").exists(), 60, what="its video beside it")
    assert not (inbox / "family" / "IMG_1234.MOV").exists() and not list((tmp_path / "failed").rglob("*"))
    told = wait_for(lambda: {e["input"]: e["reason"] for e in d.saw("not taken: left in the inbox")
                             + d.saw("no rule matches: left in the inbox")} if len(
        d.saw("not taken: left in the inbox")) >= 3 and d.saw("no rule matches: left in the inbox") else None,
        60, what="every file not taken, told")
    told.pop("family/IMG_1234.MOV", None)                             # told as a Live Photo's video, if seen first
    assert set(told) == {"family/clip.MOV", "family/notes.txt", "family/IMG_5.jpg.crdownload", "elsewhere.png"}
    assert told["family/clip.MOV"].startswith("not named as a photo")
    assert told["family/IMG_5.jpg.crdownload"].startswith("a temporary or hidden name")
    assert told["elsewhere.png"] == "no rule matches it: left in the inbox"
    def status() -> str:
        return subprocess.run([sys.executable, "-m", "nstd", "status", "--config", str(config)], capture_output=True,
                              text=True, timeout=60).stdout

    # The video that went to the archive leaves the list within the daemon's look (5 s).
    said = wait_for(lambda: (lambda s: s if "NOT TAKEN: 4 files left in the inbox" in s else None)(status()), 60,
                    what="four files listed as not taken")
    assert "clip.MOV (not named as a photo" in said, said
    (inbox / "family" / "notes.txt").unlink()
    wait_for(lambda: "NOT TAKEN: 3 files" in status(), 60, what="the removed file forgotten")
    assert len([e for e in d.saw("not taken: left in the inbox") if e["input"] != "family/IMG_1234.MOV"]) == 3
    metrics = Metrics()
    metrics.not_taken_now({"not named as a photo": 2, "a temporary or hidden name": 1})
    metrics.not_taken_now({"not named as a photo": 1})
    text = generate_latest(metrics.registry).decode()
    assert 'nstd_inbox_not_taken{reason="not named as a photo"} 1.0' in text
    assert 'nstd_inbox_not_taken{reason="a temporary or hidden name"} 0.0' in text


def test_an_mpo_or_ultra_hdr_jpeg_paints_its_first_picture(tmp_path):
    """A JPEG with a second picture after the first (MPO; Ultra HDR's gain map), written by Pillow."""
    mpo = tmp_path / "IMG_0008.jpg"
    quarters().save(mpo, format="MPO", save_all=True, append_images=[Image.new("RGB", (64, 48), (128, 128, 128))])
    with Image.open(mpo) as img:
        assert img.format == "MPO" and img.n_frames == 2
    assert all(near(a, b, 12) for a, b in zip(corners(load_image(mpo)), corners(quarters())))
    assert all(near(a, b, 12) for a, b in zip(corners(load_image(mpo, fit=16)), corners(quarters((32, 24)))))
