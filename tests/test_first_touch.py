"""What a person trying nstd for the first time meets: every command's help, numbers checked where
they are typed, a second chance after a delete, `nstd init` and `nstd rules`, cards that say what
ran, and the demo's bar on a bare pseudo-terminal. In-process over real state files where the
terminal is not the point; real processes where it is."""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import select
import sqlite3
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from conftest import ROOT, png, wait_for, write_config
from nstd.cli import build_parser, main
from nstd.config import load_config
from nstd.outbox.trash import empty_trash, in_trash
from nstd.store import Store
from test_first_hour import state_with_jobs


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


def test_every_command_shows_its_help_with_a_description_and_every_argument_explained(capsys):
    commands = subcommands()
    assert {"stylize", "init", "rules", "delete", "restore", "demo", "run", "web"} <= set(commands)
    for argv in [[]] + [[name] for name in commands]:
        with pytest.raises(SystemExit) as e:
            main([*argv, "--help"])
        out = capsys.readouterr().out
        assert e.value.code == 0 and out.startswith("usage: nstd"), argv
        if argv:
            q = commands[argv[0]]
            assert q.description and q.description.split(".")[0] in " ".join(out.split()), argv
            unexplained = [a.dest for a in q._actions if not a.help and not isinstance(a, argparse._HelpAction)]
            assert unexplained == [], argv


def test_stylize_help_as_a_newcomer_runs_it():
    """The first command a newcomer reads; its help once held a bare `%` that argparse took for a format."""
    r = subprocess.run([sys.executable, "-m", "nstd", "stylize", "--help"], capture_output=True, text=True,
                       cwd=ROOT, timeout=120)
    assert r.returncode == 0 and "--max-memory-gb" in r.stdout and "Traceback" not in r.stderr


@pytest.mark.parametrize("argv, said", [
    (["stylize", "a.png", "-s", "b.png", "-o", "c.png", "--max-memory-gb", "nan"], "finite"),
    (["stylize", "a.png", "-s", "b.png", "-o", "c.png", "--style-weight", "inf"], "finite"),
    (["priority", "--config", "c.yaml", "1", "100000"], "out of range"),
    (["priority", "--config", "c.yaml", "0", "1"], "out of range"),
    (["history", "--config", "c.yaml", "--page", "0"], "out of range"),
    (["demo", "--size", "nan"], "not a whole number"),
    (["delete", "--config", "c.yaml", "x"], "not a whole number"),
])
def test_a_number_typed_wrong_is_a_usage_error_naming_it(argv, said, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2 and said in capsys.readouterr().err


def test_every_mistake_in_a_set_is_a_usage_error(tmp_path, capsys):
    config, store, _ = state_with_jobs(tmp_path)
    store.close()
    assert main(["rerun", "a.png", "--config", str(config), "--set", "stylweight=3"]) == 2
    assert "did you mean 'style_weight'" in capsys.readouterr().err
    assert main(["rerun", "a.png", "--config", str(config), "--set", "size=100000"]) == 2
    assert "size" in capsys.readouterr().err
    assert main(["stylize", "a.png", "-s", "b.png", "-o", str(tmp_path / "o.png"), "--max-memory-gb", "0"]) == 2
    assert "max_memory_gb" in capsys.readouterr().err


def test_an_unknown_or_non_finite_yaml_value_is_named_with_the_key_meant(tmp_path, capsys):
    config = write_config(tmp_path, extra="worker:\n  max_atempts: 2\n  max_memory_gb: .nan\n")
    assert main(["check", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "worker.max_atempts: unknown key (did you mean 'max_attempts'?)" in err
    assert "worker.max_memory_gb: Input should be a finite number" in err


def finished(tmp_path, names=("a.png", "b.png")):
    """A state file with these photos painted, their images and loss logs in the outbox."""
    config, store, ids = state_with_jobs(tmp_path, names)
    images = []
    for job_id, name in zip(ids, names):
        image = tmp_path / "outbox" / "stripes" / name.replace(".png", "__stripes.png")
        image.parent.mkdir(parents=True, exist_ok=True)
        image.write_bytes(png(job_id))
        image.with_suffix(".json").write_text(json.dumps({"input": name}))
        assert store.claim_next().id == job_id
        store.finish(job_id, {"image": str(image)})
        images.append(image)
    store.close()
    return config, ids, images


def test_a_deleted_result_waits_in_the_trash_and_comes_back(tmp_path, capsys):
    config, (a, _), (image, _) = finished(tmp_path)
    outbox = tmp_path / "outbox"
    assert main(["delete", "--config", str(config), str(a)]) == 0
    assert f"`nstd restore {a}` brings them back within 7 days" in capsys.readouterr().out
    assert not image.exists() and list(in_trash(outbox)) == [a]
    assert "<h2>a.png</h2>" not in (outbox / "index.html").read_text()  # no daemon ran: the command rewrote it
    assert main(["history", "--config", str(config), "--state", "deleted", "--json"]) == 0
    assert [j["job_id"] for j in json.loads(capsys.readouterr().out)["jobs"]] == [a]

    assert main(["restore", "--config", str(config), str(a)]) == 0
    assert image.read_bytes() == png(a) and image.with_suffix(".json").is_file() and in_trash(outbox) == {}
    assert "<h2>a.png</h2>" in (outbox / "index.html").read_text()
    store = Store(load_config(config).state)
    assert store.find_job(a).state.value == "done"
    store.close()
    capsys.readouterr()
    assert main(["restore", "--config", str(config), str(a)]) == 1        # not deleted: said so
    assert "not a deleted result" in capsys.readouterr().err

    assert main(["delete", "--config", str(config), str(a)]) == 0
    assert empty_trash(outbox, now=time.time() + 6 * 86400) == []        # kept for the week
    assert empty_trash(outbox, now=time.time() + 8 * 86400) == [a]       # then gone
    capsys.readouterr()
    assert main(["restore", "--config", str(config), str(a)]) == 1
    assert "nothing of it is in the trash" in capsys.readouterr().err and not image.exists()


def test_the_gallery_tells_what_ran_and_drops_what_was_deleted_by_hand(tmp_path, capsys):
    from nstd.review.gallery import _iterations
    assert _iterations({"iterations": 50, "budget_seconds": 60.0}, {"iterations": [40, 19]}) \
        == "40+19 it in a 60 s budget"
    assert _iterations({"iterations": 50}, {}) == "50 it"                   # a result painted before the record

    config, (a, b), (image_a, _) = finished(tmp_path)
    from nstd.review.rerun import rerun_input
    store = Store(load_config(config).state)
    job = store.find_job(b)
    (again,) = rerun_input(load_config(config), store, store.input(job.input_id), [], {"style_strength": 0.7},
                           from_job=job)
    assert store.claim_next().id == again
    redone = tmp_path / "outbox" / "stripes" / "b__stripes__again.png"
    redone.write_bytes(png(9))
    store.finish(again, {"image": str(redone), "iterations": [40, 19],
                         "calibration": {"style_weight": 3.2e4, "style_strength": 0.7}})
    store.close()
    image_a.unlink()                                                     # by hand, while no daemon runs
    assert main(["gallery", "--config", str(config)]) == 0
    assert f"1 result deleted by hand left the gallery (job {a})" in capsys.readouterr().out
    page = (tmp_path / "outbox" / "index.html").read_text()
    assert "<h2>a.png</h2>" not in page and page.count("<h2>b.png</h2>") == 2
    assert f"re-run of job {b}: strength 0.7" in page and "40+19 it" in page
    assert "2 results, 0 failed" in page


def test_init_makes_a_folder_that_checks_and_runs(tmp_path, capsys):
    folder = tmp_path / "mine"
    assert main(["init", str(folder)]) == 0
    config = folder / "config.yaml"
    assert config.read_text() == (ROOT / "config.example.yaml").read_text()  # the file a newcomer reads runs
    assert main(["check", "--config", str(config)]) == 0
    assert (folder / "styles" / "swirls.jpg").is_file() and (folder / "inbox" / "sea").is_dir()
    before = {p: p.stat().st_mtime_ns for p in folder.rglob("*")}
    assert main(["init", str(folder)]) == 1                               # never over anything
    assert "not empty" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*")} == before
    r = subprocess.run([sys.executable, "-m", "nstd", "run", "--until-idle", "--config", str(config)],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr


def test_init_adopts_a_folder_that_holds_files_and_writes_over_none(tmp_path, capsys):
    folder = tmp_path / "nstd-data"                                 # a container's volume on a fresh disk
    (folder / "lost+found").mkdir(parents=True)
    (folder / "inbox" / "sea").mkdir(parents=True)
    (folder / "inbox" / "sea" / "boat.jpg").write_bytes(png(1))
    (folder / "styles").mkdir()
    (folder / "styles" / "swirls.jpg").write_bytes(b"my own swirls")
    assert main(["init", str(folder)]) == 1 and "--adopt" in capsys.readouterr().err
    assert main(["init", "--adopt", str(folder)]) == 0
    assert (folder / "inbox" / "sea" / "boat.jpg").read_bytes() == png(1)
    assert (folder / "styles" / "swirls.jpg").read_bytes() == b"my own swirls"
    assert (folder / "lost+found").is_dir() and (folder / "outbox").is_dir()
    assert main(["init", "--adopt", str(folder)]) == 1                     # laid out already: said so
    assert "laid out already" in capsys.readouterr().err


def test_the_containers_first_start_lays_out_a_data_folder_that_holds_a_photo(tmp_path):
    """container/entrypoint.sh as the image runs it, with the real `nstd init`; `nstd run` itself is a
    stand-in here that only says how it was called (the container test runs the image for real)."""
    shims = tmp_path / "bin"
    shims.mkdir()
    real = Path(sys.executable).parent / "nstd"
    (shims / "nstd").write_text(f'#!/bin/sh\n[ "$1" = run ] && {{ echo "nstd $*"; exit 0; }}\nexec {real} "$@"\n')
    (shims / "nstd").chmod(0o755)
    data = tmp_path / "srv"
    (data / "inbox").mkdir(parents=True)
    (data / "inbox" / "early.jpg").write_bytes(png(2))
    r = subprocess.run(["sh", str(ROOT / "container" / "entrypoint.sh")], capture_output=True, text=True, cwd="/",
                       env={**os.environ, "PATH": f"{shims}:{os.environ['PATH']}", "NSTD_ROOT": str(data)},
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert f"nstd run --config {data / 'config.yaml'}" in r.stdout
    assert f"nstd check --config {data / 'config.yaml'}" in r.stdout    # a path that reads as one, from /
    assert (data / "inbox" / "early.jpg").read_bytes() == png(2)


def test_rules_says_which_rule_takes_a_photo_and_why_the_others_do_not(tmp_path, capsys):
    folder = tmp_path / "mine"
    main(["init", str(folder)])
    config = str(folder / "config.yaml")
    capsys.readouterr()
    assert main(["rules", "--config", config, str(folder / "inbox" / "sea" / "boat.jpg")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("sea/boat.jpg: rules.1 takes it: 2 paintings") and "preserve_colors luminance" in out
    assert "rules.0: does not match swirls/**" in out
    assert "rules.2: would match, but rules.1 comes first" in out
    assert str(folder / "outbox" / "sea" / "boat__stormy.png") in out
    assert main(["rules", "--config", config, "drafts/x.jpg", "~photo.jpg", "notes.txt", "/etc/passwd"]) == 1
    out = capsys.readouterr().out
    assert "drafts/x.jpg: not painted: covered by ignore.0" in out
    assert "~photo.jpg: not painted: a temporary or hidden name" in out
    assert "notes.txt: not painted: not named as a photo" in out
    assert "/etc/passwd: not painted: outside the inbox" in out
    # What is in the inbox is judged as the daemon judges it: the link itself, the pipe, the bytes.
    inbox = folder / "inbox" / "sea"
    (tmp_path / "elsewhere.jpg").write_bytes(png())
    (inbox / "link.jpg").symlink_to(tmp_path / "elsewhere.jpg")
    os.mkfifo(inbox / "pipe.jpg")
    (inbox / "notes.jpg").write_text("not a picture")
    (inbox / "real.jpg").write_bytes(png())
    assert main(["rules", "--config", config, *(str(inbox / n) for n in ("link.jpg", "pipe.jpg", "notes.jpg"))]) == 1
    out = capsys.readouterr().out
    assert "sea/link.jpg: not painted: a symbolic link: never followed" in out
    assert "sea/pipe.jpg: not painted: a named pipe, not a regular file" in out
    assert "sea/notes.jpg: not painted: not an image file Pillow can read" in out
    assert out.count("the daemon moves it to failed/ with this reason") == 3
    assert main(["rules", "--config", config, str(inbox / "real.jpg")]) == 0


def test_a_file_no_image_format_starts_like_is_refused_at_once(tmp_path):
    from nstd.intake.inspector import NOT_AN_IMAGE, surely_not_an_image
    (tmp_path / "notes.jpg").write_text("just some words\n" * 50)
    (tmp_path / "zeros.jpg").write_bytes(bytes(4096))                     # allocated, not yet written
    assert surely_not_an_image(str(tmp_path / "notes.jpg")) == NOT_AN_IMAGE
    assert surely_not_an_image(str(tmp_path / "zeros.jpg")) not in (None, NOT_AN_IMAGE)  # looked at again


def test_a_file_nstd_may_not_read_says_the_fix(tmp_path, monkeypatch):
    from nstd.core import fileids
    from nstd.intake.inspector import inspect_file
    photo = tmp_path / "moved-in.png"
    photo.write_bytes(png())

    def refuse(path, root=None):  # what a 0600 file of another user gives (root reads everything)
        raise PermissionError(13, "Permission denied", path)
    monkeypatch.setattr(fileids, "open_regular", refuse)
    error = inspect_file(str(photo), 10**6, 10**6).error
    assert error.startswith("cannot read (Permission denied)") and "chmod g+r" in error and "setfacl" in error
    assert "`nstd retry`" in error


@pytest.mark.slow
def test_a_text_file_named_jpg_is_quarantined_without_retries(tmp_path, daemon_with):
    config, d = daemon_with({}, watch={"settle_seconds": 0.3, "poll_seconds": 0.2, "decode_retries": 3})
    (tmp_path / "inbox" / "notes.jpg").write_text("just some words\n" * 50)
    report = tmp_path / "failed" / "notes.jpg.error.json"
    wait_for(report.exists, 60, what="the text file refused")
    assert "starts like no image format" in json.loads(report.read_text())["error"]
    assert not d.saw("not decodable yet: will retry")


def read_all(fd: int, proc: subprocess.Popen, timeout: float) -> bytes:
    out, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    return out


@pytest.mark.slow
def test_the_demo_draws_its_bar_on_a_terminal_nobody_sized(tmp_path):
    """`script -c 'nstd demo'` and editors' terminals say 0x0; tqdm then drew nothing."""
    main_fd, child_fd = os.openpty()
    fcntl.ioctl(child_fd, termios.TIOCSWINSZ, struct.pack("HHHH", 0, 0, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    proc = subprocess.Popen([sys.executable, "-m", "nstd", "demo", "--workspace", str(tmp_path / "demo"),
                             "--size", "32", "--iterations", "2"], stdin=child_fd, stdout=child_fd,
                            stderr=child_fd, cwd=ROOT, env=env, close_fds=True)
    os.close(child_fd)
    try:
        out = read_all(main_fd, proc, 600).decode(errors="replace")
        assert proc.wait(60) == 0, out
    finally:
        os.close(main_fd)
    assert "100%|" in out and "█" in out, out[-2000:]


def test_backup_from_the_command_line_names_the_copy_and_how_to_restore(tmp_path, capsys):
    config, _, _ = finished(tmp_path)
    (tmp_path / "backups").mkdir()
    assert main(["backup", "--config", str(config), str(tmp_path / "backups")]) == 0
    out = capsys.readouterr().out
    (copy,) = (tmp_path / "backups").glob("nstd-state-*.sqlite")
    assert f"to {copy} (2 jobs); restore: stop the daemon" in out
    assert main(["backup", "--config", str(config), str(copy)]) == 1
    assert "never overwrites" in capsys.readouterr().err


def test_backup_takes_any_path_and_blames_a_missing_destination_on_itself(tmp_path, capsys):
    home = tmp_path / "team #1? 100%"                                # SQLite URIs cut a name at '#' or '?'
    config, _, _ = finished(home)
    assert main(["backup", "--config", str(config), str(home / "b#1?.sqlite")]) == 0
    assert "(2 jobs)" in capsys.readouterr().out
    copy = sqlite3.connect(home / "b#1?.sqlite")
    assert copy.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 2
    copy.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [home.name]  # nothing written beside the folder
    assert main(["backup", "--config", str(config), str(tmp_path / "nowhere" / "b.sqlite")]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'nowhere' / 'b.sqlite'}: its folder {tmp_path / 'nowhere'} does not exist" in err
    with pytest.raises(SystemExit) as e:
        main(["restore", "--config", str(config), "12345678901234567890123"])
    assert e.value.code == 2 and "out of range" in capsys.readouterr().err
