"""The inbox walk and the confinement of event paths: links are entries, never ways out."""

from __future__ import annotations

import os

from conftest import png
from nstd.intake.walker import FILE, LINK, SPECIAL, confine, walk


def test_the_walk_reports_files_links_and_pipes_and_never_enters_a_link(tmp_path):
    inbox, outside = tmp_path / "inbox", tmp_path / "outside"
    (inbox / "sub").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.png").write_bytes(png())
    (inbox / "a.png").write_bytes(png())
    (inbox / "sub" / "b.jpg").write_bytes(png())
    (inbox / "notes.txt").write_text("not an image")
    (inbox / ".hidden.png").write_bytes(png())
    (inbox / "ext").symlink_to(outside)
    (inbox / "loop").symlink_to(".")
    (inbox / "alias.png").symlink_to(outside / "secret.png")
    os.mkfifo(inbox / "pipe.png")
    found = {e.rel: e.kind for e in walk(inbox)}
    assert found == {"a.png": FILE, "sub/b.jpg": FILE, "ext": LINK, "loop": LINK, "alias.png": LINK,
                     "pipe.png": SPECIAL}


def test_an_event_path_through_a_linked_folder_stands_for_the_link(tmp_path):
    inbox, outside = tmp_path / "inbox", tmp_path / "outside"
    inbox.mkdir()
    outside.mkdir()
    (outside / "secret.png").write_bytes(png())
    (inbox / "ext").symlink_to(outside)
    (inbox / "loop").symlink_to(".")
    (inbox / "a.png").write_bytes(png())
    entry = confine(inbox, inbox / "ext" / "secret.png")
    assert (entry.path, entry.kind) == (inbox / "ext", LINK)
    entry = confine(inbox, inbox / "loop" / "loop" / "a.png")
    assert (entry.path, entry.kind) == (inbox / "loop", LINK)
    assert confine(inbox, inbox / "a.png").kind == FILE
    assert confine(inbox, inbox / ".." / "outside" / "secret.png") is None
    assert confine(inbox, tmp_path / "outside" / "secret.png") is None
    assert confine(inbox, inbox / "missing.png") is None
