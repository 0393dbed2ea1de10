"""Running it day to day: pause and resume, priorities, status --json, Prometheus metrics."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import urllib.request

import pytest

from conftest import ROOT, job_rows, png, wait_for

pytestmark = pytest.mark.slow


def stops_cleanly(d):
    assert d.proc.poll() is None, "the daemon died"
    assert d.stop(timeout=60) == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_pause_holds_new_jobs_across_a_restart_and_resume_starts_them_by_priority(tmp_path, daemon_with, daemons):
    rules = ('  - match: "urgent/**"\n    style: stripes\n    priority: 5\n'
             '  - match: "**/*"\n    style: stripes\n')
    config, d = daemon_with({}, rules=rules)
    nstd = lambda *a: subprocess.run([sys.executable, "-m", "nstd", *a, "--config", str(config)],
                                     capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert nstd("pause").returncode == 0
    (tmp_path / "inbox" / "first.png").write_bytes(png(1))
    (tmp_path / "inbox" / "urgent").mkdir(exist_ok=True)  # its rule names it: the daemon made it
    (tmp_path / "inbox" / "urgent" / "later.png").write_bytes(png(2))
    wait_for(lambda: len(job_rows(config)) == 2, 60, what="both queued")
    # The gate says so when it next looks (it reads the pause at most once a second).
    wait_for(lambda: d.saw("no new jobs start"), 30, what="the daemon saying the pause holds")
    assert d.stop() == 0                                  # the pause outlives the daemon
    d2 = daemons(config)
    d2.wait_ready()
    status = json.loads(nstd("status", "--json").stdout)
    assert status["paused"]["why"] == "nstd pause" and status["jobs"]["queued"] == 2
    assert [j["input"] for j in status["queue"]] == ["urgent/later.png", "first.png"]
    text = nstd("status").stdout
    assert "PAUSED since" in text and f"daemon: running, pid {d2.proc.pid}" in text
    assert status["daemon"]["running"] and status["daemon"]["pid"] == d2.proc.pid
    assert all(r["state"] == "queued" for r in job_rows(config))
    assert nstd("resume").stdout.startswith("resumed")
    wait_for(lambda: all(r["state"] == "done" for r in job_rows(config)), 120, what="both painted")
    order = [r["relpath"] for r in sorted(job_rows(config), key=lambda r: r["started"])]
    assert order == ["urgent/later.png", "first.png"]     # the higher priority ran first
    stops_cleanly(d2)
    assert f"daemon: NOT RUNNING (the last one, pid {d2.proc.pid}" in nstd("status").stdout


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        return r.read().decode()


def sample(text: str, name: str, **labels) -> float | None:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))  # the exposition sorts labels
    pattern = re.escape(name) + (r"\{" + re.escape(want) + r"\}" if labels else "") + r" (\S+)"
    m = re.search(r"^" + pattern + r"$", text, re.M)
    return float(m.group(1)) if m else None


def test_metrics_are_served_over_http_while_jobs_run(tmp_path, daemon_with):
    port = free_port()
    config, d = daemon_with({}, defaults={"size": 32, "iterations": 40},
                            extra=f"metrics:\n  listen: 127.0.0.1:{port}\n")
    for i in range(3):
        (tmp_path / "inbox" / f"p{i}.png").write_bytes(png(i))
    (tmp_path / "inbox" / "junk.png").write_bytes(b"junk")
    wait_for(lambda: sample(scrape(port), "nstd_jobs", state="running") == 1, 60, what="a running job in /metrics")
    wait_for(lambda: sample(scrape(port), "nstd_jobs", state="done") == 3, 120, what="three done in /metrics")
    text = scrape(port)
    assert sample(text, "nstd_job_duration_seconds_count", rule="stripes", device="cpu") == 3
    assert sample(text, "nstd_seconds_per_iteration_count", rule="stripes", device="cpu") == 3
    assert sample(text, "nstd_jobs_finished_total", rule="stripes", outcome="painted") == 3
    assert sample(text, "nstd_queue_depth") == 0 and sample(text, "nstd_worker_up") == 1
    assert sample(text, "nstd_inputs", outcome="refused") == 1
    assert sample(text, "nstd_watcher_rescans_total", why="start-up") == 1
    assert sample(text, "nstd_last_success_timestamp_seconds") > 0
    assert sample(text, "nstd_paused") == 0
    stops_cleanly(d)


class Hook:
    """A real local HTTP endpoint that keeps what apprise's json:// posts to it."""

    def __init__(self):
        import http.server
        import threading
        received = self.received = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def titles(self):
        return [m["title"] for m in self.received]

    def close(self):
        self.server.shutdown()


def test_notifications_reach_a_real_endpoint_and_a_dead_one_only_costs_a_log_line(tmp_path, daemon_with):
    hook = Hook()
    dead = free_port()                                      # nothing listens there
    try:
        config, d = daemon_with({}, extra=f"worker:\n  max_attempts: 1\nnotify:\n  urls:\n"
                                          f"    - json://127.0.0.1:{hook.port}/nstd\n"
                                          f"    - json://127.0.0.1:{dead}/nowhere\n")
        (tmp_path / "inbox" / "junk.png").write_bytes(b"junk")
        (tmp_path / "inbox" / "good.png").write_bytes(png(1))
        wait_for(lambda: "nstd: queue empty" in hook.titles(), 90, what="the batch summary")
        assert "nstd: junk.png refused" in hook.titles()
        summary = [m for m in hook.received if m["title"] == "nstd: queue empty"][0]
        assert "1 painted, 0 failed, 1 refused" in summary["message"]
        wait_for(lambda: d.saw("notification failed"), 60, what="the dead endpoint logged")
        # A job that fails for good is announced too: the style breaks at run time.
        (tmp_path / "styles" / "stripes.png").write_bytes(b"not an image any more")
        (tmp_path / "inbox" / "other.png").write_bytes(png(2))
        wait_for(lambda: "nstd: other.png could not be painted" in hook.titles(), 90, what="the failure notice")
        stops_cleanly(d)
    finally:
        hook.close()


def test_rerun_paints_an_archived_photo_again_beside_the_first_result(tmp_path, daemon_with):
    config, d = daemon_with({"photo.png": png(1)})
    wait_for(lambda: (tmp_path / "archive" / "photo.png").exists(), 60, what="the first painting")
    nstd = lambda *a: subprocess.run([sys.executable, "-m", "nstd", *a, "--config", str(config)],
                                     capture_output=True, text=True, cwd=ROOT, timeout=60)
    r = nstd("rerun", "photo.png", "--set", "style_weight=200", "--set", "iterations=2")
    assert r.returncode == 0 and r.stdout.startswith("queued job 2"), r.stderr
    wait_for(lambda: len(job_rows(config)) == 2 and all(j["state"] == "done" for j in job_rows(config)), 60,
             what="the second version")
    results = sorted(p.name for p in (tmp_path / "outbox" / "stripes").glob("*.png") if ".loss" not in p.name)
    assert results[0] == "photo__stripes.png" and re.fullmatch(r"photo__stripes__[0-9a-f]{10}\.png", results[1])
    second = json.loads((tmp_path / "outbox" / "stripes" / results[1]).with_suffix(".json").read_text())
    assert second["params"]["style_weight"] == 200 and second["params"]["iterations"] == 2
    assert [p.name for p in (tmp_path / "archive").iterdir()] == ["photo.png"]   # not moved or copied again
    assert nstd("rerun", "photo.png", "--set", "style_weight=200", "--set", "iterations=2").stdout.startswith(
        "nothing new to paint")
    page = (tmp_path / "outbox" / "index.html").read_text()
    assert page.count("versions: ") == 2 and f'href="stripes/{results[1]}"' in page   # grouped, each linked
    r = nstd("rerun", "nope.png")
    assert r.returncode == 1 and "no photo of that name" in r.stderr
    r = nstd("rerun", "photo.png", "--set", "style_wieght=1")
    assert r.returncode == 2 and "style_wieght: unknown setting" in r.stderr
    stops_cleanly(d)


def test_a_taken_metrics_port_is_an_error_in_the_log_not_a_stop(tmp_path, daemon_with):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config, d = daemon_with({"photo.png": png(1)}, extra=f"metrics:\n  listen: 127.0.0.1:{port}\n")
        wait_for(lambda: (tmp_path / "archive" / "photo.png").exists(), 90, what="the photo painted regardless")
        assert d.saw("cannot serve metrics; painting goes on without them")
        r = subprocess.run([sys.executable, "-m", "nstd", "check", "--config", str(config)], capture_output=True,
                           text=True, cwd=ROOT, timeout=60)
        assert r.returncode == 0 and f"metrics.listen: cannot listen on 127.0.0.1:{port}" in r.stderr
        stops_cleanly(d)
