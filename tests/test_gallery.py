"""The outbox gallery after real daemon runs: complete, self-contained, valid, and shown by a browser."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import time
from html.parser import HTMLParser
from urllib.parse import unquote

import pytest

from conftest import ROOT, needs_chromium, png, wait_for, write_config




class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href", "data-view", "data-photo") and value:
                self.refs.append(value)


@pytest.fixture(scope="module")
def processed(tmp_path_factory):
    """A daemon run to idle over three good photos (one in a subfolder, one with a space) and one bad."""
    folder = tmp_path_factory.mktemp("gallery")
    config = write_config(folder, watch={"settle_seconds": 0.2, "decode_retries": 0})
    inbox = folder / "inbox"
    (inbox / "trip").mkdir(parents=True)
    (inbox / "one.png").write_bytes(png(0))
    (inbox / "trip" / "two é.png").write_bytes(png(1))
    (inbox / "three.png").write_bytes(png(2))
    (inbox / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg" * 10)
    r = subprocess.run([sys.executable, "-m", "nstd", "run", "--config", str(config), "--until-idle"],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    return folder / "outbox"


def test_index_lists_every_result_and_the_failure(processed):
    page = (processed / "index.html").read_text()
    for name in ("one.png", "trip/two é.png", "three.png"):
        assert f"<h2>{name}</h2>" in page
    failed = re.search(r'<article class="card failed"[^>]*data-outcome="failed".*?</article>', page, re.S).group(0)
    assert "<h2>broken.jpg</h2>" in failed and "corrupt or truncated image" in failed
    assert "3 results, 1 failed, 0 running" in page
    db = sqlite3.connect(processed.parent / ".nstd" / "state.sqlite")
    newest_first = [r[0] for r in db.execute("SELECT relpath FROM jobs JOIN inputs ON inputs.id=input_id "
                                             "WHERE jobs.state='done' ORDER BY jobs.finished DESC")]
    db.close()
    assert re.findall(r"<h2>([^<]+)</h2>", page)[:3] == newest_first


def test_every_link_and_image_is_a_file_inside_the_outbox(processed):
    parser = Links()
    parser.feed((processed / "index.html").read_text())
    assert len(parser.refs) >= 3 * 9 + 2  # per card: painting, view, photo, 2 thumbs, log, plot...; css, js
    for ref in parser.refs:
        assert not re.match(r"^[a-z]+:", ref) and not ref.startswith("/"), ref
        target = (processed / unquote(ref)).resolve()
        assert target.is_relative_to(processed.resolve()) and target.is_file(), ref


def test_the_html_is_valid(processed):
    html5lib = pytest.importorskip("html5lib")
    html5lib.HTMLParser(strict=True).parse((processed / "index.html").read_bytes())


def test_each_result_has_a_loss_curve_and_hidden_things_stay_hidden(processed):
    visible = sorted(p.relative_to(processed).as_posix() for p in processed.rglob("*")
                     if p.is_file() and not any(part.startswith(".") for part in p.relative_to(processed).parts))
    stems = ["one", "three", "two_é"]
    assert visible == ["index.html"] + sorted(f"stripes/{s}__stripes{ext}" for s in stems
                                              for ext in (".json", ".loss.png", ".png"))
    assert len(list((processed / ".nstd" / "thumbs").glob("job*.jpg"))) == 3 * 2  # thumbnail, viewing size


def test_gallery_command_rewrites_it(processed):
    (processed / "index.html").unlink()
    config = processed.parent / "config.yaml"
    r = subprocess.run([sys.executable, "-m", "nstd", "gallery", "--config", str(config)],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and (processed / "index.html").is_file()


def test_many_results_are_paginated(tmp_path):
    from nstd.review.gallery import PAGE_SIZE, write_gallery
    from nstd.store import Store
    store = Store(tmp_path / "s.sqlite")
    outbox = tmp_path / "outbox"
    (outbox / "r").mkdir(parents=True)
    for i in range(PAGE_SIZE * 2 + 1):
        _, (jid,), _ = store.add_input(f"{i}.png", f"/in/{i}.png", f"h{i}", 1,
                                       [(f"k{i}", "r", "s", {"images": [], "params": {}, "output_ext": "png"})])
        store.claim_next()
        image = outbox / "r" / f"{i}__s.png"
        image.write_bytes(b"png")
        store.finish(jid, {"image": str(image)})
    pages = write_gallery(store, outbox)
    assert [p.name for p in pages] == ["index.html", "page-1.html", "page-2.html"]
    index = pages[0].read_text()
    assert 'href="page-2.html"' in index and 'href="page-1.html"' in index
    assert f"{PAGE_SIZE * 2 + 1} results" in index and index.count("<article") == PAGE_SIZE
    assert 'id="job1"' in pages[1].read_text() and f'id="job{PAGE_SIZE + 1}"' in pages[2].read_text()
    # A page whose results did not change is not written again: the next rewrite writes index.html alone.
    assert [p.name for p in write_gallery(store, outbox)] == ["index.html"]
    # A result deleted from the oldest page: that page and every later one shift by one card.
    store.mark_deleted([3])
    assert [p.name for p in write_gallery(store, outbox)] == ["index.html", "page-1.html", "page-2.html"]
    assert 'id="job3"' not in pages[1].read_text() and f'id="job{PAGE_SIZE + 1}"' in pages[1].read_text()
    assert f"{PAGE_SIZE * 2} results" in pages[0].read_text()
    # One fewer page's worth: the last page goes.
    store.mark_deleted(list(range(4, PAGE_SIZE + 5)))
    assert [p.name for p in write_gallery(store, outbox)] == ["index.html"]
    assert not (outbox / "page-2.html").exists() and 'href="page-2.html"' not in pages[0].read_text()
    store.close()


@needs_chromium
def test_a_browser_shows_every_image_and_fetches_nothing_outside(processed, browser):
    driver = browser
    driver.get("about:blank")
    driver.get_log("performance")  # drop the browser's own start-up requests
    driver.get((processed / "index.html").as_uri())
    images = wait_for(lambda: driver.execute_script(
        "const imgs=[...document.images].filter(i=>i.getAttribute('src')); imgs.forEach(i=>i.loading='eager');"
        "return imgs.every(i=>i.complete) ? imgs.map(i=>[i.src,i.naturalWidth]) : null"), 30,
        what="all images loaded")
    assert len(images) >= 9
    assert all(width > 0 for _, width in images), images
    requests = [json.loads(entry["message"])["message"] for entry in driver.get_log("performance")]
    fetched = {m["params"]["request"]["url"] for m in requests if m["method"] == "Network.requestWillBeSent"
               and m["params"].get("documentURL", "").startswith(processed.resolve().as_uri())}
    assert len(fetched) >= 9
    outside = [u for u in fetched if not u.startswith(processed.resolve().as_uri() + "/")]
    assert outside == [], outside
    assert driver.execute_script("return document.title") == "nstd outbox"


@needs_chromium
def test_the_viewer_opens_zooms_compares_and_steps(processed, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    driver = browser
    driver.get((processed / "index.html").as_uri())
    viewer = driver.find_element(By.CSS_SELECTOR, ".viewer")
    assert not viewer.is_displayed()
    driver.find_elements(By.CSS_SELECTOR, "a.hero")[0].click()
    wait_for(viewer.is_displayed, 10, what="the viewer")
    assert driver.current_url.endswith("index.html")                  # opened in place, not navigated
    after = driver.find_element(By.CSS_SELECTOR, ".viewer img.after")
    wait_for(lambda: driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", after),
             10, what="the painting in the viewer")
    title = driver.find_element(By.CSS_SELECTOR, ".viewer .title").text
    body = driver.find_element(By.TAG_NAME, "body")
    body.send_keys("+")
    body.send_keys("+")
    assert float(viewer.get_attribute("data-scale")) == pytest.approx(2.25)
    # Zoomed past 1.5x the viewer swaps in the full-size file.
    assert after.get_attribute("src").endswith(".png")
    body.send_keys("0")
    assert float(viewer.get_attribute("data-scale")) == 1
    before = driver.find_element(By.CSS_SELECTOR, ".viewer img.before")
    assert not before.is_displayed()
    body.send_keys("c")                                               # before/after: the photo over the painting
    assert before.is_displayed() and "-view.jpg" in before.get_attribute("src")
    slider = driver.find_element(By.CSS_SELECTOR, ".viewer input[type=range]")
    driver.execute_script("arguments[0].value = 30; arguments[0].dispatchEvent(new Event('input'))", slider)
    assert "70%" in before.get_attribute("style")                     # clipped to the left 30 %
    body.send_keys(Keys.ARROW_RIGHT)
    assert driver.find_element(By.CSS_SELECTOR, ".viewer .title").text != title
    assert viewer.get_attribute("data-index") == "1"
    body.send_keys(Keys.ARROW_LEFT)
    assert driver.find_element(By.CSS_SELECTOR, ".viewer .title").text == title
    body.send_keys(Keys.ESCAPE)
    assert not viewer.is_displayed()
    # The filters hide what does not match.
    from selenium.webdriver.support.ui import Select
    Select(driver.find_element(By.CSS_SELECTOR, "select[name=outcome]")).select_by_visible_text("failed")
    shown = [c.get_attribute("data-outcome") for c in driver.find_elements(By.CSS_SELECTOR, ".card")
             if c.is_displayed()]
    assert shown == ["failed"]


@needs_chromium
def test_a_page_no_longer_rewritten_says_so_and_stops_refreshing(tmp_path, browser):
    """A daemon killed with -9 cannot say "stopped": the page notices its own age instead."""
    from nstd.review.gallery import write_gallery
    from nstd.store import Store
    store = Store(tmp_path / "s.sqlite")
    store.add_input("slow.png", "/in/slow.png", "h", 1, [("k", "r", "s", {"images": [], "params": {},
                                                                          "output_ext": "png"})])
    store.claim_next()
    outbox = tmp_path / "outbox"
    write_gallery(store, outbox)
    store.close()
    index = outbox / "index.html"
    page = index.read_text()
    assert 'data-refresh="15"' in page and "1 running" in page
    written = int(re.search(r'data-written="(\d+)"', page).group(1))

    def aged(seconds: float) -> None:  # the page as if written `seconds` ago, refreshing every second
        index.write_text(page.replace(f'data-written="{written}"', f'data-written="{int(time.time() - seconds)}"')
                         .replace('data-refresh="15"', 'data-refresh="1"'))

    # Control: a fresh page schedules its reload, and does reload (the marker set on it goes).
    aged(0)
    browser.get(index.as_uri())
    assert browser.find_element("tag name", "body").get_attribute("data-reloading") == "scheduled"
    browser.execute_script("window.stillHere = true")
    wait_for(lambda: browser.execute_script("return window.stillHere") is None, 20, what="the page's own reload")
    # An hour-old page says what it is and schedules no reload.
    aged(3600)
    browser.get(index.as_uri())
    state = browser.find_element("id", "state").text
    assert "not updated since" in state and "daemon is stopped" in state
    assert browser.find_element("tag name", "body").get_attribute("data-reloading") is None
    assert "stale" in browser.find_element("tag name", "body").get_attribute("class")


@pytest.mark.slow
def test_running_job_shows_progress_and_a_preview(tmp_path, daemon_with):
    config, d = daemon_with({"slowpoke.png": png()}, defaults={"size": 48, "iterations": 600},
                            extra="worker:\n  preview_every: 5\n")
    outbox = tmp_path / "outbox"
    wait_for(lambda: (outbox / ".nstd" / "previews" / "job1.jpg").exists(), 60, what="a preview")
    # The page is rewritten on each state change and every 15 s while a job runs.
    wait_for(lambda: ".nstd/previews/job1.jpg" in (outbox / "index.html").read_text(), 60,
             what="progress and the preview in the gallery")
    page = (outbox / "index.html").read_text()
    assert "slowpoke.png" in page and "ETA" in page and ".nstd/previews/job1.jpg" in page
    assert 'http-equiv="refresh"' in page
    r = subprocess.run([sys.executable, "-m", "nstd", "status", "--config", str(config)],
                       capture_output=True, text=True, cwd=ROOT)
    running = r"running: job 1 slowpoke.png -> stripes \(attempt 1\) on \S+ \d+% \(\d+/600\), [\d.]+ it/s, ETA"
    assert re.search(running, r.stdout), r.stdout
    # After SIGTERM the running job is requeued: the page must not go on claiming it runs.
    assert d.stop() == 0
    page = (outbox / "index.html").read_text()
    assert "daemon stopped at" in page and "ETA" not in page and 'http-equiv="refresh"' not in page


def test_a_running_card_that_gains_its_host_or_preview_is_rewritten_at_once_else_within_the_period(tmp_path):
    """The rewrite decision alone, on a fake clock and a stand-in log (no page is written here):
    progress alone waits for the period; the first word of a job, its host and its first preview,
    do not, or a job shorter than the period ends before its card ever showed them."""
    from nstd.outbox.thumbs import preview_path
    from nstd.review.gallery import REFRESH_SECONDS
    from nstd.review.refresh import GalleryRefresh

    clock = [100.0]
    refresh = GalleryRefresh(store=None, outbox=tmp_path, log=None, clock=lambda: clock[0])
    refresh.due = None                                              # the pages are current
    refresh.progressed(1, {"done": 1, "host": "h"})
    assert refresh.due == 0.0                                       # its first progress, on host h
    refresh.due = None
    refresh.progressed(1, {"done": 2, "host": "h"})
    assert refresh.due == 100.0 + REFRESH_SECONDS                   # numbers only: within the period
    clock[0] = 101.0
    refresh.progressed(1, {"done": 3, "host": "h"})
    assert refresh.due == 100.0 + REFRESH_SECONDS                   # not put off by more progress
    preview = preview_path(tmp_path, 1)
    preview.parent.mkdir(parents=True)
    preview.write_bytes(b"jpeg")
    refresh.progressed(1, {"done": 5, "host": "h"})
    assert refresh.due == 0.0                                       # the preview is there: now
    refresh.due = None
    refresh.progressed(2, {"done": 1})
    assert refresh.due == 0.0                                       # another job's first progress


class _Said:
    """A stand-in log that keeps what was said."""

    def __init__(self):
        self.lines = []

    def error(self, event, **kw):
        self.lines.append(("error", event))

    def info(self, event, **kw):
        self.lines.append(("info", event))


def test_a_gallery_rewrite_that_failed_is_tried_again_until_it_is_written(tmp_path):
    """A real store and outbox on a fake clock: the outbox is in the way (a file where its folder
    was) for two tries, told once, and the pages are written on the first try after it is back."""
    from nstd.config import load_config
    from nstd.review.gallery import REFRESH_SECONDS
    from nstd.review.refresh import GalleryRefresh
    from nstd.store import Store
    from test_first_touch import finished

    config, _, _ = finished(tmp_path)
    store = Store(load_config(config).state)
    outbox, away = tmp_path / "outbox", tmp_path / "outbox-away"
    outbox.rename(away)
    outbox.write_text("in the way")
    said = _Said()
    refresh = GalleryRefresh(store, outbox, said, clock=lambda: 100.0)
    refresh.write_if_due(100.0)
    assert refresh.due == 100.0 + REFRESH_SECONDS
    assert said.lines == [("error", "cannot write the gallery; trying again")]
    refresh.soon()
    assert refresh.due == 100.0 + REFRESH_SECONDS                   # still due: no new change needed to retry
    refresh.write_if_due(100.0 + REFRESH_SECONDS)
    assert len(said.lines) == 1                                     # told once per spell
    outbox.unlink()
    away.rename(outbox)
    refresh.write_if_due(100.0 + 2 * REFRESH_SECONDS)
    assert refresh.due is None and said.lines[-1] == ("info", "the gallery is written again")
    assert "a.png" in (outbox / "index.html").read_text()
    store.close()
