"""`nstd stylize` and `nstd check` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys

from PIL import Image

from conftest import ROOT, write_config


def nstd(*args, **kw):
    return subprocess.run([sys.executable, "-m", "nstd", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=300, **kw)


def test_stylize_writes_the_image_and_its_loss_log(images, tmp_path):
    content, style = images
    out = tmp_path / "out" / "painted.jpg"
    r = nstd("stylize", content, "--style", f"{style}:0.7", "--style", style, "-o", out, "--size", 32,
             "--iterations", 4, "--log-every", 2, "--preserve-colors", "--seed", 5)
    assert r.returncode == 0, r.stderr
    assert Image.open(out).size == (32, 24) and Image.open(out).format == "JPEG"
    log = json.loads(out.with_suffix(".json").read_text())
    assert log["params"]["preserve_colors"] == "luminance" and log["params"]["seed"] == 5
    assert [s["weight"] for s in log["style_files"]] == [0.7, 1.0]
    assert [t["step"] for t in log["trace"]] == [1, 2, 4]
    assert {"content", "style", "style_layers", "tv", "total"} <= set(log["final"])
    assert log["versions"]["torch"] and log["weights"].startswith("caffe:") and log["device"] == "cpu"
    assert log["timings"]["total_seconds"] > 0 and log["peak_memory_bytes"]["bytes"] > 0
    assert not list(out.parent.glob(".nstd-tmp-*"))  # no temp file left beside it


def test_stylize_bad_input_names_the_file_and_exits_nonzero(images, tmp_path):
    _, style = images
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff garbage")
    r = nstd("stylize", bad, "--style", style, "-o", tmp_path / "o.png", "--size", 32, "--iterations", 1)
    assert r.returncode == 1
    assert str(bad) in r.stderr and "image" in r.stderr
    assert not (tmp_path / "o.png").exists()


def test_stylize_refuses_bad_output_type_and_missing_device(images, tmp_path):
    content, style = images
    r = nstd("stylize", content, "--style", style, "-o", tmp_path / "o.gifx", "--iterations", 1)
    assert r.returncode == 1 and "unsupported output type" in r.stderr
    r = nstd("stylize", content, "--style", style, "-o", tmp_path / "o.png", "--iterations", 1,
             "--device", "cuda:7")
    assert r.returncode == 3 and "cuda:7" in r.stderr


def test_check_reports_ok_and_problems(tmp_path):
    config = write_config(tmp_path)
    r = nstd("check", "--config", config)
    assert r.returncode == 0 and "OK" in r.stdout
    config.write_text(config.read_text().replace("style: stripes", "style: stripez"))
    r = nstd("check", "--config", config)
    assert r.returncode == 2
    assert "rules.0.style: unknown style 'stripez' (did you mean 'stripes'?)" in r.stderr


def test_check_refuses_notification_urls_apprise_cannot_use(tmp_path):
    config = write_config(tmp_path, extra="notify:\n  urls:\n    - json://127.0.0.1:9/x\n    - nonsense://what\n")
    r = nstd("check", "--config", config)
    assert r.returncode == 2 and "notify.urls.1: apprise does not understand nonsense://" in r.stderr
    assert "notify.urls.0" not in r.stderr
