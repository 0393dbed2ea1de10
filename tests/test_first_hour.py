"""What a newcomer meets in the first hour: the demo run twice, `nstd check` naming every problem,
`--set` and `nstd retry` saying what is wrong, `nstd history` finding finished work, `nstd status`
saying whether a daemon runs, and loss plots marking the scales. In-process over real state files."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest

from conftest import ROOT, png, write_config
from nstd.cli import main
from nstd.config import load_config
from nstd.core.errors import NstdError
from nstd.core.jobs import job_key
from nstd.demo import make_workspace
from nstd.outbox.lossplot import render, scale_starts
from nstd.review.history import parse_since
from nstd.store import Store


def test_a_second_demo_renews_its_own_workspace_and_never_touches_another(tmp_path):
    root = tmp_path / "nstd-demo"
    config = make_workspace(root, [], None, 64, 5)
    (root / "outbox" / "old-result.png").parent.mkdir(parents=True)
    (root / "outbox" / "old-result.png").write_bytes(b"old")
    (root / "notes.txt").write_text("mine")  # not the demo's: kept
    assert make_workspace(root, [], None, 64, 5) == config
    assert not (root / "outbox").exists() and (root / "notes.txt").read_text() == "mine"
    assert len([p for p in (root / "inbox").rglob("*.jpg")]) == 3
    other = tmp_path / "photos"
    other.mkdir()
    (other / "holiday.jpg").write_bytes(b"precious")
    with pytest.raises(NstdError, match="not made by `nstd demo`"):
        make_workspace(other, [], None, 64, 5)
    assert (other / "holiday.jpg").read_bytes() == b"precious"


def test_a_users_mistake_is_one_line_never_a_traceback(tmp_path, capsys):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "x").write_text("x")
    assert main(["demo", "--workspace", str(tmp_path / "photos")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("nstd: ") and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert main(["status", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_check_names_every_problem_at_once(tmp_path, capsys):
    config = write_config(tmp_path, defaults={"size": "big"},
                          rules='  - match: "*"\n    style: stripse\n')
    assert main(["check", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "defaults.size:" in err                                         # a type error...
    assert "rules.0.style: unknown style 'stripse' (did you mean 'stripes'?)" in err  # ...hides nothing


def test_set_suggests_the_setting_meant(tmp_path, capsys):
    from nstd.review.rerun import parse_settings
    with pytest.raises(Exception) as e:
        parse_settings(["stylweight=3", "size=abc"])
    text = str(e.value)
    assert "stylweight: unknown setting (did you mean 'style_weight'?)" in text and "size:" in text


def state_with_jobs(tmp_path, names=("a.png", "b.png", "c.png")) -> tuple:
    config_path = write_config(tmp_path)
    config = load_config(config_path)
    spec = config.rules[0].jobs[0]
    store = Store(config.state)
    ids = []
    for i, name in enumerate(names):
        path = tmp_path / "archive" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png(i))
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        _, (job_id,), _ = store.add_input(name, str(path), sha, path.stat().st_size,
                                          [(job_key(sha, spec), spec.rule, spec.style, spec.as_stored())])
        ids.append(job_id)
    return config_path, store, ids


def test_retry_of_a_job_that_did_not_fail_says_what_it_is(tmp_path, capsys):
    config, store, (done, _, _) = state_with_jobs(tmp_path)
    store.claim_next()
    store.finish(done, {"image": str(tmp_path / "outbox" / "a.png")})
    store.close()
    assert main(["retry", "--config", str(config), str(done)]) == 1
    err = capsys.readouterr().err
    assert f"job {done} is done, not failed: nothing to retry; `nstd rerun a.png` paints it again" in err
    assert main(["retry", "--config", str(config), "999"]) == 1
    assert "job 999: no such job" in capsys.readouterr().err


def test_history_lists_every_job_newest_first_filtered_and_paged(tmp_path, capsys):
    config, store, (a, b, c) = state_with_jobs(tmp_path, ("trip/a.png", "trip/b.png", "home/c.png"))
    store.claim_next()
    store.finish(a, {"image": "/out/a__stripes.png"})
    store.claim_next()
    store.fail(b, "not an image", permanent=True, max_attempts=3)
    store.close()
    assert main(["history", "--config", str(config)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("3 jobs, newest first; page 1 of 1")
    assert [int(line.split()[0]) for line in lines[1:]] == [b, a, c]
    assert "/out/a__stripes.png" in lines[2] and "error: not an image" in lines[1]
    assert main(["history", "--config", str(config), "--photo", "trip", "--state", "done", "--json"]) == 0
    h = json.loads(capsys.readouterr().out)
    assert h["total"] == 1 and h["jobs"][0]["job_id"] == a and h["jobs"][0]["result"] == "/out/a__stripes.png"
    assert main(["history", "--config", str(config), "--per-page", "2", "--page", "2", "--json"]) == 0
    assert [j["job_id"] for j in json.loads(capsys.readouterr().out)["jobs"]] == [c]
    assert main(["history", "--config", str(config), "--since", "1h", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total"] == 3
    assert main(["history", "--config", str(config), "--state", "lost"]) == 1
    assert parse_since("2d", now=1_000_000.0) == 1_000_000.0 - 2 * 86400


def test_status_says_whether_a_daemon_holds_the_state_file(tmp_path):
    config, store, _ = state_with_jobs(tmp_path)
    status = lambda: subprocess.run([sys.executable, "-m", "nstd", "status", "--config", str(config)],
                                    capture_output=True, text=True, cwd=ROOT, timeout=60).stdout
    assert status().startswith("daemon: NOT RUNNING (none has run on this state file yet)")
    # What the daemon does at start (tests/test_operations.py checks it with a real daemon).
    store.lock()
    store.record_daemon({"pid": 4321, "host": "here", "since": 1e9, "heartbeat": 1e9})
    store.heartbeat(__import__("time").time(), {"count": 2, "first": [{"input": "new.png", "stage": "settling"},
                                                                       {"input": "big.png", "stage": "inspecting"}]})
    text = status()
    assert text.startswith("daemon: running, pid 4321 on here") and "last heartbeat" in text
    assert "arriving: 2 files seen, not yet taken: new.png (settling), big.png (inspecting)" in text
    store.close()  # the lock goes with the process or the file: no daemon now
    assert status().startswith("daemon: NOT RUNNING (the last one, pid 4321 on here")


def test_loss_plots_mark_where_each_scale_begins():
    trace = [{"level": 0, "step": s, "total": 2.0, "content": 1.0, "style": 1.0, "tv": 0.1} for s in (1, 5, 10)]
    trace += [{"level": 1, "step": s, "total": 3.0, "content": 1.0, "style": 2.0, "tv": 0.1} for s in (11, 15)]
    trace += [{"level": 1, "step": 15, "total": 2.5, "content": 1.0, "style": 1.5, "tv": 0.1, "averaged": True}]
    assert scale_starts(trace) == [(11, 1)]
    assert render(trace, "t", ("96x72", "136x102")).startswith(b"\x89PNG")


@pytest.mark.parametrize("key, value, why", [("style_weight", ".nan", "finite"), ("size", "100000", "size"),
                                             ("iterations", "1000000000", "iterations")])
def test_check_refuses_values_beyond_their_bounds(tmp_path, capsys, key, value, why):
    config = write_config(tmp_path, defaults={"size": 32, "iterations": 3, key: value})
    assert main(["check", "--config", str(config)]) == 2
    assert why in capsys.readouterr().err
