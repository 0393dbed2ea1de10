"""The inspector: hashing and test-decoding in a child process, never blocking the caller."""

from __future__ import annotations

import hashlib
import os

from conftest import png, wait_for
from nstd.intake.inspector import Inspector, surely_not_an_image


def test_inspections_of_good_bad_special_and_huge_files(tmp_path):
    (tmp_path / "good.png").write_bytes(png(1))
    (tmp_path / "junk.png").write_bytes(b"junk" * 100)
    os.mkfifo(tmp_path / "pipe.png")
    with open(tmp_path / "huge.png", "wb") as f:
        f.truncate(20 * 10**9)  # sparse: 20 GB that must never be read
    inspector = Inspector(max_pixels=50_000_000, max_bytes=10**9)
    try:
        names = ["good.png", "junk.png", "pipe.png", "huge.png"]
        for name in names:
            inspector.submit(str(tmp_path / name))
        assert inspector.results() == []  # it never waits
        got = {}
        wait_for(lambda: got.update({os.path.basename(i.path): i for i in inspector.results()})
                 or len(got) == 4, 60, what="four inspections")
    finally:
        inspector.close()
    assert got["good.png"].sha256 == hashlib.sha256(png(1)).hexdigest() and got["good.png"].error is None
    assert got["good.png"].stamp[0] == len(png(1))
    assert "not an image" in got["junk.png"].error
    assert "named pipe" in got["pipe.png"].error
    assert "over the limit of 1000 MB" in got["huge.png"].error


def test_a_file_that_takes_too_long_is_given_up_and_the_next_one_still_inspected(tmp_path):
    (tmp_path / "good.png").write_bytes(png(2))
    inspector = Inspector(max_pixels=50_000_000, max_bytes=10**9, timeout=60)
    try:
        inspector.submit(str(tmp_path / "good.png"))
        assert inspector.results(now=0.0) == []       # sent, at time 0 of a fake clock
        (late,) = inspector.results(now=61.0)          # the deadline passed before any answer was read
        assert late.error == "took longer than 60 s to read"
        inspector.submit(str(tmp_path / "good.png"))
        got = []
        wait_for(lambda: got.extend(inspector.results()) or got, 60, what="the second verdict")
        assert got[0].sha256 is not None
    finally:
        inspector.close()


def test_new_files_are_inspected_before_files_looked_at_again(tmp_path):
    for name in ("again1.png", "again2.png", "again3.png", "new.png"):
        (tmp_path / name).write_bytes(b"junk" * 100 if name.startswith("again") else png(3))
    inspector = Inspector(max_pixels=50_000_000, max_bytes=10**9)
    try:
        for name in ("again1.png", "again2.png", "again3.png"):
            inspector.submit(str(tmp_path / name), again=True)
        inspector.submit(str(tmp_path / "new.png"))
        got = []
        wait_for(lambda: got.extend(inspector.results()) or len(got) == 4, 60, what="four inspections")
    finally:
        inspector.close()
    assert [os.path.basename(i.path) for i in got][0] == "new.png" and len(inspector) == 0


def test_files_that_are_surely_no_image_are_told_without_the_child(tmp_path):
    cases = {"empty.jpg": b"", "words.png": b"just some words\n" * 10, "photo.png": png(1),
             "odd.tga": b"just some words\n"}  # TGA has no signature: only the decoder can tell
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    said = {name: surely_not_an_image(str(tmp_path / name), str(tmp_path)) for name in cases}
    assert said["empty.jpg"] == "an empty file, not an image"
    assert "starts like no image format" in said["words.png"]
    assert said["photo.png"] is None and said["odd.tga"] is None
