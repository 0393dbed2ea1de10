"""`nstd web` as a real server process over a real state file: what it shows, what it serves,
who may act, and that its actions are the commands' actions. No painting here (the store is
filled directly); tests/test_web_browser.py drives a real daemon and a real browser."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, png, wait_for, write_config
from test_operations import free_port

PASSWORD = "correct horse"


def request(port: int, method: str, path: str, body: dict | None = None, headers: dict | None = None,
            timeout: float = 30) -> tuple[int, dict, bytes]:
    """One HTTP request exactly as given (http.client sends the path as is: no `..` folding)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    data = None
    headers = {"Host": f"127.0.0.1:{port}", **(headers or {})}
    if body is not None:
        from urllib.parse import urlencode
        data = urlencode(body)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    try:
        conn.request(method, path, body=data, headers=headers)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


class Site:
    """A workspace with a state file holding a result, a failure and a queued job, and `nstd web` on it."""

    def __init__(self, folder: Path, password: bool = True, watch: dict | None = None):
        from nstd.config import load_config
        from nstd.core.jobs import job_key
        from nstd.store import Store
        from nstd.review.web.auth import hash_password

        self.folder = folder
        self.port = free_port()
        web = f"web:\n  listen: 127.0.0.1:{self.port}\n"
        if password:
            web += f"  password_hash: \"{hash_password(PASSWORD)}\"\n"
        self.config_path = write_config(folder, extra=web, **({"watch": watch} if watch else {}))
        config = load_config(self.config_path)
        self.outbox = config.outbox
        spec = config.rules[0].jobs[0]
        store = Store(config.state)
        self.jobs = {}
        for name, seed in (("photo.png", 1), ("bad.png", 2), ("later.png", 3)):
            path = folder / "archive" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(png(seed))
            sha = hashlib.sha256(path.read_bytes()).hexdigest()
            _, (job_id,), _ = store.add_input(name, str(path), sha, path.stat().st_size,
                                              [(job_key(sha, spec), spec.rule, spec.style, spec.as_stored())])
            self.jobs[name] = job_id
        store.claim_next()
        image = self.outbox / "stripes" / "photo__stripes.png"
        image.parent.mkdir(parents=True)
        image.write_bytes(png(1))
        image.with_suffix(".json").write_text(json.dumps({"input": "photo.png"}))
        thumbs = self.outbox / ".nstd" / "thumbs"
        thumbs.mkdir(parents=True)
        (thumbs / "job1.jpg").write_bytes(b"jpeg")
        store.finish(self.jobs["photo.png"], {"image": str(image), "thumbs": {"result": ".nstd/thumbs/job1.jpg"}})
        store.claim_next()
        store.fail(self.jobs["bad.png"], "the style image is broken", permanent=True, max_attempts=3)
        store.close()
        self.state = config.state
        self.log = open(folder / "web.log", "w")
        self.process = subprocess.Popen([sys.executable, "-m", "nstd", "web", "--config", str(self.config_path)],
                                        cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(self._up, 30, what="nstd web answering")

    def _up(self) -> bool:
        assert self.process.poll() is None, (self.folder / "web.log").read_text()
        try:
            return request(self.port, "GET", "/")[0] == 200
        except OSError:
            return False

    def get(self, path: str, **kw):
        return request(self.port, "GET", path, **kw)

    def post(self, path: str, body: dict | None = None, **kw):
        return request(self.port, "POST", path, body=body or {}, **kw)

    def login(self) -> tuple[dict, str]:
        """Log in through the form; returns the cookie header and the page's CSRF token."""
        status, headers, _ = self.post("/login", {"password": PASSWORD})
        assert status == 303 and headers["location"] == "/"
        cookie = {"Cookie": headers["set-cookie"].split(";")[0]}
        assert "httponly" in headers["set-cookie"].lower() and "samesite=strict" in headers["set-cookie"].lower()
        page = self.get("/", headers=cookie)[2].decode()
        return cookie, re.search(r'name="csrf" value="([^"]+)"', page).group(1)

    def rows(self, sql: str):
        import sqlite3
        db = sqlite3.connect(self.state)
        try:
            return db.execute(sql).fetchall()
        finally:
            db.close()

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


@pytest.fixture
def site(tmp_path):
    s = Site(tmp_path)
    yield s
    s.close()


def test_the_page_shows_results_failures_and_the_queue_in_order(site):
    status, headers, body = site.get("/")
    page = body.decode()
    assert status == 200 and "default-src 'self'" in headers["content-security-policy"]
    assert 'id="job1"' in page and "<h2>photo.png</h2>" in page and 'href="/o/stripes/photo__stripes.png"' in page
    assert "the style image is broken" in page
    assert re.search(r'<ol class="queue"><li id="queued3">job 3: later.png', page)
    assert "log in to act" in page and 'action="/jobs/1/delete"' not in page   # no forms before a login
    html5lib = pytest.importorskip("html5lib")
    html5lib.HTMLParser(strict=True).parse(body)
    status, _, part = site.get("/?part=main")                             # what the live page swaps in
    assert status == 200 and b"<html" not in part and b'id="job1"' in part and b'id="queued3"' in part


@pytest.mark.parametrize("path", [
    "/o/../config.yaml", "/o/%2e%2e/config.yaml", "/o/%2E%2E%2Fconfig.yaml", "/o/..%2f..%2fetc/passwd",
    "/o//etc/passwd", "/o/%2Fetc%2Fpasswd", "/o/stripes/../../config.yaml", "/o/./stripes/photo__stripes.png",
    "/assets/../config.yaml", "/assets/%2e%2e%2fconfig.yaml", "/o/outside/passwd", "/o/inside-link.png",
    "/o/stripes/.nstd-tmp-123-abc", "/o/fifo", "/o/stripes", "/o/", "/o/stripes/photo__stripes.png%00.txt",
])
def test_no_route_serves_anything_but_a_regular_file_inside_the_outbox(site, path):
    (site.outbox / "outside").symlink_to("/etc")
    (site.outbox / "inside-link.png").symlink_to(site.outbox / "stripes" / "photo__stripes.png")
    (site.outbox / "stripes" / ".nstd-tmp-123-abc").write_bytes(b"half written")
    os.mkfifo(site.outbox / "fifo")
    status, _, body = site.get(path, timeout=10)
    assert status in (400, 404), (path, status, body[:100])
    assert b"root:" not in body and b"inbox:" not in body


def test_outbox_files_are_served_with_their_type_and_revalidated(site):
    status, headers, body = site.get("/o/stripes/photo__stripes.png")
    assert status == 200 and body == png(1) and headers["content-type"] == "image/png"
    assert site.get("/o/stripes/photo__stripes.png", headers={"If-None-Match": headers["etag"]})[0] == 304
    assert site.get("/assets/viewer.js")[0] == 200
    status, headers, _ = site.get("/assets/favicon.svg")                  # else each browser logs a 404
    assert status == 200 and headers["content-type"].startswith("image/svg+xml")
    assert 'href="/assets/favicon.svg"' in site.get("/")[2].decode()


def test_a_foreign_host_header_is_refused(site):
    """DNS rebinding: a page on another name must not read the gallery through the browser."""
    assert site.get("/", headers={"Host": "evil.example"})[0] == 400


def test_actions_need_a_login_and_the_form_token(site):
    assert site.post("/pause", {"csrf": "guess"})[0] == 401
    status, headers, _ = site.post("/login", {"password": "wrong"})
    assert status == 303 and "error" in headers["location"] and "set-cookie" not in headers
    cookie, csrf = site.login()
    assert site.post("/pause", {}, headers=cookie)[0] == 403
    assert site.post("/pause", {"csrf": csrf + "x"}, headers=cookie)[0] == 403
    assert site.post("/pause", {"csrf": csrf}, headers={**cookie, "Origin": "http://evil.example"})[0] == 403
    assert site.rows("SELECT * FROM settings WHERE key='paused'") == []
    status, _, body = site.post("/pause", {"csrf": csrf}, headers={**cookie, "Accept": "application/json"})
    assert status == 200 and json.loads(body)["ok"]
    assert site.rows("SELECT COUNT(*) FROM settings WHERE key='paused'") == [(1,)]
    assert "paused: no new job starts" in site.get("/", headers=cookie)[2].decode()
    assert site.post("/resume", {"csrf": csrf}, headers=cookie)[0] == 303
    assert site.rows("SELECT COUNT(*) FROM settings WHERE key='paused'") == [(0,)]
    assert site.post("/logout", {"csrf": csrf}, headers=cookie)[0] == 303
    assert site.post("/pause", {"csrf": csrf}, headers=cookie)[0] == 401     # the session is over


def test_the_actions_are_the_commands_actions(site):
    cookie, csrf = site.login()
    act = lambda path, **form: site.post(path, {"csrf": csrf, **form}, headers={**cookie, "Accept": "application/json"})
    assert act("/jobs/3/priority", priority="7")[0] == 200
    assert site.rows("SELECT priority FROM jobs WHERE id=3") == [(7,)]
    assert act("/jobs/2/retry")[0] == 200
    assert site.rows("SELECT state, attempts FROM jobs WHERE id=2") == [("queued", 0)]
    status, _, body = act("/jobs/1/rerun", style="stripes", style_weight="123", iterations="7")
    assert status == 200, body
    new = site.rows("SELECT id, spec FROM jobs WHERE input_id=(SELECT input_id FROM jobs WHERE id=1) AND id!=1")
    assert len(new) == 1 and json.loads(new[0][1])["params"]["style_weight"] == 123
    assert json.loads(new[0][1])["params"]["iterations"] == 7
    status, _, body = act("/jobs/1/rerun", style="no-such-style")
    assert status == 400 and "unknown style" in json.loads(body)["message"]
    status, _, body = act("/jobs/1/rerun", style_weight="lots")
    assert status == 400 and "style_weight" in json.loads(body)["message"]
    image = site.outbox / "stripes" / "photo__stripes.png"
    status, _, body = act("/jobs/1/delete")
    assert status == 200 and json.loads(body)["undo"] == "/jobs/1/restore"   # the toast's undo button
    assert "in the trash for 7 days" in json.loads(body)["message"]
    assert not image.exists() and not image.with_suffix(".json").exists()
    assert not (site.outbox / ".nstd" / "thumbs" / "job1.jpg").exists()
    (folder,) = (site.outbox / ".nstd" / "trash").iterdir()          # job1-<its key>
    assert folder.name.startswith("job1-")
    assert (folder / "stripes" / "photo__stripes.png").read_bytes() == png(1)
    for who in ({}, cookie):                                         # deleted: served to no one from the trash
        assert site.get(f"/o/.nstd/trash/{folder.name}/stripes/photo__stripes.png", headers=who)[0] == 404
    assert site.rows("SELECT state FROM jobs WHERE id=1") == [("deleted",)]
    page = site.get("/", headers=cookie)[2].decode()
    assert 'id="job1"' not in page and 'action="/jobs/1/restore"' in page   # listed as deleted, restorable
    assert 'action="/jobs/1/restore"' not in site.get("/")[2].decode()      # not to a visitor
    assert act("/jobs/1/delete")[0] == 400                                  # already gone: said so
    assert act("/jobs/1/restore")[0] == 200                                 # the undo
    assert image.read_bytes() == png(1) and (site.outbox / ".nstd" / "thumbs" / "job1.jpg").exists()
    assert site.rows("SELECT state FROM jobs WHERE id=1") == [("done",)]
    assert 'id="job1"' in site.get("/")[2].decode()
    assert act("/jobs/1/delete")[0] == 200
    image.write_bytes(b"another file took its place")
    status, _, body = act("/jobs/1/restore")
    assert status == 400 and "another file has its place" in json.loads(body)["message"]
    assert image.read_bytes() == b"another file took its place"             # never overwritten


def test_without_a_password_it_is_read_only(tmp_path):
    site = Site(tmp_path, password=False)
    try:
        page = site.get("/")[2].decode()
        assert "read-only" in page and "<form class=\"inline\"" not in page
        status, _, body = site.post("/pause", {"csrf": "x"})
        assert status == 403 and b"read-only" in body
        assert site.post("/login", {"password": "anything"})[1].get("set-cookie") is None
        assert site.rows("SELECT COUNT(*) FROM settings") == [(0,)]
    finally:
        site.close()


def test_events_push_progress_and_changes(site):
    from nstd.store import Store

    conn = http.client.HTTPConnection("127.0.0.1", site.port, timeout=60)
    conn.request("GET", "/events", headers={"Host": f"127.0.0.1:{site.port}"})
    r = conn.getresponse()
    assert r.status == 200 and r.getheader("content-type").startswith("text/event-stream")

    def next_event() -> str:
        while True:
            line = r.fp.readline().decode()
            assert line, "the stream ended"
            if line.startswith("event:"):
                return line.split(":", 1)[1].strip()

    assert next_event() == "progress"                                     # the running jobs, at once
    store = Store(site.state)
    store.set_priority(3, 5)                                              # e.g. `nstd priority 3 5`
    store.close()
    assert next_event() == "changed"
    conn.close()


def test_live_pages_share_one_reading_and_are_bounded_per_client(site):
    from nstd.review.web.events import STREAMS_PER_CLIENT
    from nstd.store import Store

    def open_stream():
        conn = http.client.HTTPConnection("127.0.0.1", site.port, timeout=60)
        conn.request("GET", "/events", headers={"Host": f"127.0.0.1:{site.port}"})
        return conn, conn.getresponse()

    def next_event(r) -> str:
        while True:
            line = r.fp.readline().decode()
            assert line, "the stream ended"
            if line.startswith("event:"):
                return line.split(":", 1)[1].strip()

    streams = [open_stream() for _ in range(STREAMS_PER_CLIENT)]
    assert all(r.status == 200 and next_event(r) == "progress" for _, r in streams)
    conn, r = open_stream()
    assert r.status == 429 and b"too many live pages open" in r.read() and r.getheader("retry-after") == "30"
    conn.close()
    store = Store(site.state)
    store.set_priority(3, 7)
    store.close()
    assert all(next_event(r) == "changed" for _, r in streams)            # every page told, from one reading
    streams.pop()[0].close()
    admitted = []

    def another_admitted():
        conn, r = open_stream()
        if r.status == 200:
            admitted.append(conn)
            return True
        conn.close()
        return False
    wait_for(another_admitted, 30, interval=0.5, what="the closed page's place given to a new one")
    for conn in [c for c, _ in streams] + admitted:
        conn.close()
    assert site.get("/")[0] == 200


def test_password_guessing_is_slowed_per_address_and_the_right_password_waits_too(site):
    from nstd.review.web.auth import FREE_TRIES

    for _ in range(FREE_TRIES):
        assert site.post("/login", {"password": "guess"})[1]["location"] == "/login?error=wrong+password"
    status, headers, body = site.post("/login", {"password": PASSWORD})
    assert status == 429 and b"too many wrong passwords: try again in" in body
    assert int(headers["retry-after"]) >= 1 and headers.get("set-cookie") is None  # not even tried
    # Polling while it waits does not lengthen the wait; after it, the right password works and clears it.
    wait_for(lambda: site.post("/login", {"password": PASSWORD})[0] == 303, 60, interval=0.5,
             what="the wait to end")
    assert site.post("/login", {"password": "guess"})[1]["location"] == "/login?error=wrong+password"


def test_the_login_guard_doubles_its_wait_and_counts_all_addresses_together():
    from nstd.review.web.auth import FREE_TRIES, FREE_TRIES_IN_ALL, LoginGuard

    now = [1000.0]
    guard = LoginGuard(clock=lambda: now[0])  # a stand-in clock: the decision, not the waiting, is tested
    for _ in range(FREE_TRIES):
        assert guard.wait("a") == 0
        guard.failed("a")
    assert guard.wait("a") == 2 and guard.wait("b") == 0
    now[0] += 2
    guard.failed("a")
    assert guard.wait("a") == 4
    guard.succeeded("a")
    assert guard.wait("a") == 0
    for i in range(FREE_TRIES_IN_ALL):
        guard.failed(f"10.0.{i}.1")                     # one wrong password each from many addresses
    assert guard.wait("10.9.9.9") == 2                  # a new address waits as well


def test_password_hashes(tmp_path):
    from nstd.review.web.auth import check_hash_format, hash_password, verify_password

    stored = hash_password("s3cret")
    assert stored != hash_password("s3cret") and "s3cret" not in stored    # salted, never the password
    assert verify_password("s3cret", stored) and not verify_password("s3cret ", stored)
    for bad in ("s3cret", "scrypt$1$2$3$x", "md5$1$2$3$a$b"):
        with pytest.raises(ValueError):
            check_hash_format(bad)
    r = subprocess.run([sys.executable, "-m", "nstd", "web-password"], input="s3cret\n", capture_output=True,
                       text=True, cwd=ROOT)
    printed = re.search(r'password_hash: "([^"]+)"', r.stdout).group(1)
    assert verify_password("s3cret", printed)
    config = write_config(tmp_path, extra='web:\n  password_hash: "plain-text"\n')
    r = subprocess.run([sys.executable, "-m", "nstd", "check", "--config", str(config)], capture_output=True,
                       text=True, cwd=ROOT)
    assert r.returncode != 0 and "web.password_hash" in r.stderr


def test_web_password_writes_the_hash_in_place_and_a_second_web_key_is_an_error(tmp_path):
    from nstd.config import load_config
    from nstd.review.web.auth import verify_password

    config = write_config(tmp_path, extra="web:            # the web app\n  listen: 127.0.0.1:9999\n"
                                          "  password_hash: null   # from nstd web-password\n")
    appended = config.read_text() + 'web:\n  password_hash: "x"\n'     # what appending the old output made
    (tmp_path / "twice.yaml").write_text(appended)
    r = subprocess.run([sys.executable, "-m", "nstd", "check", "--config", str(tmp_path / "twice.yaml")],
                       capture_output=True, text=True, cwd=ROOT)
    lines = config.read_text().count("\n")
    assert r.returncode == 2 and f"web: given twice, at line {lines - 2} and line {lines + 1}" in r.stderr, r.stderr

    r = subprocess.run([sys.executable, "-m", "nstd", "web-password", "--config", str(config)], input="s3cret\n",
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and "set web.password_hash" in r.stdout, r.stderr
    text = config.read_text()
    assert "# the web app" in text and "# from nstd web-password" in text and text.count("web:") == 1
    loaded = load_config(config)
    assert loaded.web.listen == "127.0.0.1:9999" and verify_password("s3cret", loaded.web.password_hash)

    bare = write_config(tmp_path / "bare")
    r = subprocess.run([sys.executable, "-m", "nstd", "web-password", "--config", str(bare)], input="other\n",
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and verify_password("other", load_config(bare).web.password_hash), r.stderr
    r = subprocess.run([sys.executable, "-m", "nstd", "web-password"], input="s3cret\n", capture_output=True,
                       text=True, cwd=ROOT)
    assert r.stdout.startswith("  password_hash: ") and "web: section" in r.stderr


def test_the_web_app_keeps_working_when_the_outbox_is_removed(site):
    shutil.rmtree(site.outbox)
    assert site.get("/o/stripes/photo__stripes.png")[0] == 404
    assert site.get("/")[0] == 200


def test_sighup_applies_a_new_password_and_ends_the_old_ones_sessions(site):
    import signal as _signal

    from nstd.review.web.auth import hash_password
    cookie, csrf = site.login()
    text = site.config_path.read_text()
    old_hash = re.search(r'password_hash: "([^"]+)"', text).group(1)
    site.config_path.write_text(text.replace(old_hash, hash_password("a new one")))
    site.process.send_signal(_signal.SIGHUP)
    wait_for(lambda: "config reloaded" in (site.folder / "web.log").read_text(), 30, what="the reload logged")
    assert site.process.poll() is None                                   # SIGHUP never stops it
    assert site.post("/pause", {"csrf": csrf}, headers=cookie)[0] == 401  # the old session ended
    assert site.post("/login", {"password": PASSWORD})[1]["location"].startswith("/login?error")
    assert site.post("/login", {"password": "a new one"})[1]["location"] == "/"


@pytest.mark.parametrize("path, form, why", [
    ("/jobs/1/rerun", {"size": "100000"}, "size"),
    ("/jobs/1/rerun", {"iterations": str(10**30)}, "iterations"),
    ("/jobs/1/rerun", {"style_weight": "nan"}, "finite"),
    ("/jobs/1/rerun", {"style_weight": "!!python/object/apply:os.system ['true']"}, "not a plain value"),
    ("/jobs/3/priority", {"priority": str(2**63)}, "priority"),
    ("/jobs/99999999999999999999999/delete", {}, "bad form"),
])
def test_every_value_from_a_person_is_bounded_and_refused_with_the_reason(site, path, form, why):
    cookie, csrf = site.login()
    status, _, body = site.post(path, {"csrf": csrf, **form}, headers={**cookie, "Accept": "application/json"})
    assert status == 400 and why in json.loads(body)["message"], body
    assert site.process.poll() is None


def test_a_rerun_starts_from_the_card_it_came_from(site):
    cookie, csrf = site.login()
    first = site.jobs["photo.png"]
    for weight in ("80", None):  # the second re-run, from the first card, does not inherit 80
        form = {"csrf": csrf, **({"style_weight": weight} if weight else {"iterations": "4"})}
        assert site.post(f"/jobs/{first}/rerun", form, headers=cookie)[0] == 303
    specs = [json.loads(r[0])["params"] for r in site.rows("SELECT spec FROM jobs ORDER BY id")[-2:]]
    assert specs[0]["style_weight"] == 80 and specs[1]["style_weight"] is None and specs[1]["iterations"] == 4


def test_lighter_and_stronger_paint_again_from_the_cards_strength(site):
    cookie, csrf = site.login()
    status, _, body = site.get("/", headers=cookie)
    first = site.jobs["photo.png"]
    card = body.decode().split(f'action="/jobs/{first}/rerun"')[1].split("</form>")[0]
    # The card's strength is the one its painting's search used (the default, 0.5).
    assert 'name="style_strength" value="0.3"' in card and 'name="style_strength" value="0.7"' in card
    assert site.post(f"/jobs/{first}/rerun", {"csrf": csrf, "style_strength": "0.7"}, headers=cookie)[0] == 303
    spec = json.loads(site.rows("SELECT spec FROM jobs ORDER BY id DESC LIMIT 1")[0][0])
    assert spec["params"]["style_strength"] == 0.7
    # From a card painted at a fixed weight, a strength replaces that weight: asked for alone (as
    # `nstd rerun --set style_strength=` does) and beside the weight field the same form sends along.
    assert site.post(f"/jobs/{first}/rerun", {"csrf": csrf, "style_weight": "80"}, headers=cookie)[0] == 303
    fixed = site.rows("SELECT id FROM jobs ORDER BY id DESC LIMIT 1")[0][0]
    for form in ({"style_strength": "0.9"}, {"style_strength": "0.1", "style_weight": "80"}):
        assert site.post(f"/jobs/{fixed}/rerun", {"csrf": csrf, **form}, headers=cookie)[0] == 303
        spec = json.loads(site.rows("SELECT spec FROM jobs ORDER BY id DESC LIMIT 1")[0][0])["params"]
        assert (spec["style_strength"], spec["style_weight"]) == (float(form["style_strength"]), None)
    status, _, body = site.post(f"/jobs/{first}/rerun", {"csrf": csrf, "style_strength": "2"},
                                headers={**cookie, "Accept": "application/json"})
    assert status == 400 and "style_strength" in json.loads(body)["message"]


def test_a_state_file_replaced_under_the_web_app_is_opened_anew_before_it_shows_or_acts(site):
    """A rebuild or a restored backup puts another file at the state's path: the page must show that
    one, and a pause clicked there must land in it, where the daemon reads it."""
    import sqlite3
    cookie, csrf = site.login()
    assert "later.png" in site.get("/", headers=cookie)[2].decode()
    replacement = site.folder / "restored.sqlite"
    db = sqlite3.connect(site.state)
    db.execute("VACUUM INTO ?", (str(replacement),))
    db.close()
    db = sqlite3.connect(replacement)
    db.execute("DELETE FROM jobs WHERE id=?", (site.jobs["later.png"],))
    db.commit()
    db.close()
    for suffix in ("-wal", "-shm"):                                  # as a restore does: the old file's journal goes
        Path(f"{site.state}{suffix}").unlink(missing_ok=True)
    os.replace(replacement, site.state)
    assert "later.png" not in site.get("/", headers=cookie)[2].decode()
    status, _, _ = site.post("/pause", {"csrf": csrf}, headers={**cookie, "Accept": "application/json"})
    assert status == 200 and site.rows("SELECT COUNT(*) FROM settings WHERE key='paused'") == [(1,)]
    assert "the state file was replaced: opened anew" in (site.folder / "web.log").read_text()


def test_a_stronger_and_a_lighter_rerun_are_told_apart_everywhere_before_they_finish(site):
    cookie, csrf = site.login()
    said = []
    for strength in ("0.8", "0.3"):
        status, _, body = site.post("/jobs/1/rerun", {"csrf": csrf, "style": "stripes", "style_strength": strength},
                                    headers={**cookie, "Accept": "application/json"})
        assert status == 200, body
        said.append(json.loads(body)["message"])
    assert "(re-run of job 1: strength 0.8)" in said[0] and "(re-run of job 1: strength 0.3)" in said[1]  # the toasts
    page = site.get("/", headers=cookie)[2].decode()
    assert "re-run of job 1: strength 0.8" in page and "re-run of job 1: strength 0.3" in page  # the queue
    for command in ("status", "history"):
        out = subprocess.run([sys.executable, "-m", "nstd", command, "--config", str(site.config_path)],
                             capture_output=True, text=True, cwd=ROOT, timeout=60).stdout
        assert "[re-run of job 1: strength 0.8]" in out and "[re-run of job 1: strength 0.3]" in out, out
