"""Uploading photos through `nstd web`, against a real server process: where they land, under which
name, who may send them, and that hostile, oversized, cut-off and concurrent uploads leave the
inbox as it should be: whole photos under plain names inside the chosen folder, nothing else.
tests/test_web_browser.py uploads from a real browser to a real daemon that paints them."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from pathlib import Path
from urllib.parse import quote

import pytest

from conftest import FAST_WATCH, png, wait_for
from test_web import Site


def upload(site: Site, name: str, body: bytes, folder: str = "", headers: dict | None = None,
           chunked: bool = False) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", site.port, timeout=60)
    try:
        conn.request("POST", f"/upload?folder={quote(folder)}&name={quote(name)}",
                     body=iter([body]) if chunked else body, encode_chunked=chunked,
                     headers={"Host": f"127.0.0.1:{site.port}", "Accept": "application/json", **(headers or {})})
        r = conn.getresponse()
        raw = r.read()
        try:
            return r.status, json.loads(raw)
        except ValueError:
            return r.status, {"message": raw.decode(errors="replace")}
    finally:
        conn.close()


def inbox_files(inbox: Path) -> list[str]:
    return sorted(str(p.relative_to(inbox)) for p in inbox.rglob("*")
                  if (p.is_file() or p.is_symlink()) and p.name != ".nstd-daemon.lock")


@pytest.fixture
def uploads(tmp_path):
    (tmp_path / "inbox" / "friends").mkdir(parents=True)
    (tmp_path / "inbox" / "friends" / ".nstd-upload-0123.part").write_bytes(b"left by a crash")
    s = Site(tmp_path, watch={**FAST_WATCH, "max_file_mb": 0.02})
    cookie, csrf = s.login()
    s.auth = {**cookie, "X-CSRF-Token": csrf}
    yield s
    s.close()


def test_stale_upload_temps_are_removed_when_the_web_app_starts(uploads):
    assert inbox_files(uploads.folder / "inbox") == []


def test_an_upload_lands_whole_under_its_name_in_the_chosen_folder(uploads):
    inbox = uploads.folder / "inbox"
    page = uploads.get("/", headers=uploads.auth)[2].decode()
    assert 'value="friends"' in page and "upload.js" in page  # the folders the rules take photos from
    status, answer = upload(uploads, "photo.png", png(1), "friends", uploads.auth)
    assert status == 200 and answer["name"] == "friends/photo.png", answer
    assert (inbox / "friends" / "photo.png").read_bytes() == png(1)
    status, answer = upload(uploads, "photo.png", png(2), "friends", uploads.auth)
    assert status == 200 and answer["name"] == "friends/photo (2).png"  # never replaces a photo
    assert (inbox / "friends" / "photo.png").read_bytes() == png(1)
    assert upload(uploads, "top.png", png(3), "", uploads.auth)[0] == 200
    assert inbox_files(inbox) == ["friends/photo (2).png", "friends/photo.png", "top.png"]


def test_only_a_logged_in_page_with_its_token_may_upload(uploads, tmp_path):
    cookie = {"Cookie": uploads.auth["Cookie"]}
    assert upload(uploads, "a.png", png(1), "", {})[0] == 401
    assert upload(uploads, "a.png", png(1), "", {**cookie, "X-CSRF-Token": "forged"})[0] == 403
    assert upload(uploads, "a.png", png(1), "", {**uploads.auth, "Origin": "http://evil.example"})[0] == 403
    assert inbox_files(uploads.folder / "inbox") == []


@pytest.mark.parametrize("name, stored", [
    ("../../evil.png", "evil.png"), ("/etc/passwd.png", "passwd.png"), ("a\x00b.png", "ab.png"),
    ("..\\..\\win.png", "win.png"), (".hidden.png", "hidden.png"), ("line\nbreak.png", "linebreak.png"),
    ("x" * 400 + ".png", "x" * 196 + ".png"), ("Ünïcode ✓.JPG", "Ünïcode ✓.JPG"),
])
def test_a_name_becomes_a_plain_name_inside_the_folder(uploads, name, stored):
    status, answer = upload(uploads, name, png(4), "friends", uploads.auth)
    assert status == 200, answer
    assert inbox_files(uploads.folder / "inbox") == [f"friends/{stored}"]


@pytest.mark.parametrize("name", ["..", "notes.txt", "", ".png", "photo", "evil.png/.."])
def test_names_that_are_no_photo_are_refused(uploads, name):
    status, answer = upload(uploads, name, png(4), "", uploads.auth)
    assert status == 400 and "name" in answer["message"], answer
    assert inbox_files(uploads.folder / "inbox") == []


@pytest.mark.parametrize("name", ["~photo.jpg", "x.syncthing.y.jpg"])
def test_a_name_intake_would_never_take_is_refused_with_the_reason(uploads, name):
    """Confirmed, it would wait in the inbox for ever: an upload ends painted, or refused now."""
    status, answer = upload(uploads, name, png(4), "friends", uploads.auth)
    assert status == 422 and "temporary or hidden name" in answer["message"], answer
    assert inbox_files(uploads.folder / "inbox") == []


def test_only_the_offered_folders_are_reachable(uploads, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (uploads.folder / "inbox" / "link").symlink_to(outside)
    for folder in ["../outside", "link", "/tmp", "friends/../..", "nowhere", ".nstd"]:
        status, answer = upload(uploads, "x.png", png(5), folder, uploads.auth)
        assert status == 400 and "not a folder" in answer["message"], (folder, answer)
    assert list(outside.iterdir()) == []
    assert inbox_files(uploads.folder / "inbox") == ["link"]


def test_oversized_uploads_are_refused_and_leave_nothing(uploads):
    big = b"\xff\xd8" + b"0" * 30_000  # max_file_mb is 0.02 here
    status, answer = upload(uploads, "big.jpg", big, "", uploads.auth)
    assert status == 413 and "max_file_mb" in answer["message"]
    status, answer = upload(uploads, "big.jpg", big, "", uploads.auth, chunked=True)  # no length given
    assert status == 413 and "max_file_mb" in answer["message"]
    assert upload(uploads, "empty.jpg", b"", "", uploads.auth)[0] == 400
    assert inbox_files(uploads.folder / "inbox") == []


def test_an_upload_cut_off_midway_leaves_nothing(uploads):
    inbox = uploads.folder / "inbox"
    with socket.create_connection(("127.0.0.1", uploads.port), timeout=30) as sock:
        head = (f"POST /upload?folder=friends&name=cut.png HTTP/1.1\r\nHost: 127.0.0.1:{uploads.port}\r\n"
                f"Cookie: {uploads.auth['Cookie']}\r\nX-CSRF-Token: {uploads.auth['X-CSRF-Token']}\r\n"
                "Content-Length: 15000\r\n\r\n")
        sock.sendall(head.encode() + png(1)[:500])
        wait_for(lambda: any(p.name.endswith(".part") for p in (inbox / "friends").iterdir()), 30,
                 what="the upload's temp file")
    wait_for(lambda: inbox_files(inbox) == [], 30, what="the cut-off upload's temp file removed")
    assert upload(uploads, "after.png", png(1), "friends", uploads.auth)[0] == 200  # the app goes on


def test_many_uploads_of_one_name_at_once_each_keep_their_own(uploads):
    answers = []

    def send(i: int) -> None:
        answers.append(upload(uploads, "same.png", png(10 + i), "friends", uploads.auth))

    threads = [threading.Thread(target=send, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(s for s, _ in answers) == [200] * 10
    names = sorted(a["name"] for _, a in answers)
    assert len(set(names)) == 10
    folder = uploads.folder / "inbox" / "friends"
    assert sorted(p.read_bytes() for p in folder.iterdir()) == sorted(png(10 + i) for i in range(10))


def test_a_full_disk_leaves_nothing_and_says_so(tmp_path, monkeypatch):
    # A stand-in for a full disk (a real one needs a mount): os.write fails as it would.
    import errno

    from nstd.review.web import uploads as up
    (tmp_path / "inbox").mkdir()
    u = up.Upload(tmp_path / "inbox", "", 10**6)

    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(up.os, "write", full)
    with pytest.raises(up.UploadRefused) as e:
        u.write(b"\x89PNG")
    assert e.value.status == 507 and "disk is full" in str(e.value)
    u.discard()
    u.close()
    assert list((tmp_path / "inbox").iterdir()) == []
