"""Reviewing and steering from a real browser: `nstd web` beside a real daemon, in chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, needs_chromium, png, screenshot, wait_for
from test_operations import free_port
from test_web import PASSWORD, request

pytestmark = [pytest.mark.slow, needs_chromium]


@pytest.fixture
def web(tmp_path, daemon_with):
    from nstd.review.web.auth import hash_password
    port = free_port()
    config, d = daemon_with({"one.png": png(1), "two.png": png(2)},
                            extra=f"web:\n  listen: 127.0.0.1:{port}\n  password_hash: \"{hash_password(PASSWORD)}\"\n")
    wait_for(lambda: (tmp_path / "archive" / "one.png").exists() and (tmp_path / "archive" / "two.png").exists(),
             120, what="two photos painted")
    log = open(tmp_path / "web.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "nstd", "web", "--config", str(config)], cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT)

    def up():
        assert proc.poll() is None, (tmp_path / "web.log").read_text()
        try:
            return request(port, "GET", "/")[0] == 200
        except OSError:
            return False
    wait_for(up, 30, what="nstd web")
    yield f"http://127.0.0.1:{port}", d
    proc.terminate()
    proc.wait(30)
    log.close()


def cards(driver) -> list[str]:
    return driver.execute_script(
        "return [...document.querySelectorAll('article.card[data-outcome=done]')].map(c => c.id)")


def test_review_and_steer_from_the_browser(web, browser, tmp_path):
    from selenium.webdriver.common.by import By
    url, daemon = web
    driver = browser
    driver.get(url + "/")
    wait_for(lambda: len(cards(driver)) == 2, 30, what="two result cards")
    # Without a login no action goes through, whatever the page sends.
    status = driver.execute_async_script(
        "fetch('/pause', {method: 'POST', body: new URLSearchParams({csrf: 'x'})}).then(r => arguments[0](r.status))")
    assert status == 401

    # The viewer works on the live page as on the static one.
    driver.find_elements(By.CSS_SELECTOR, "a.hero")[0].click()
    viewer = driver.find_element(By.CSS_SELECTOR, ".viewer")
    wait_for(viewer.is_displayed, 10, what="the viewer")
    driver.find_element(By.CSS_SELECTOR, ".viewer button[data-do=zoomin]").click()
    assert float(viewer.get_attribute("data-scale")) == 1.5
    driver.find_element(By.CSS_SELECTOR, ".viewer input[type=checkbox]").click()
    assert driver.find_element(By.CSS_SELECTOR, ".viewer img.before").is_displayed()
    driver.find_element(By.CSS_SELECTOR, ".viewer button[data-do=close]").click()

    driver.get(url + "/login")
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "form.rerun"), 30, what="the action forms after login")
    shots = Path(os.environ.get("NSTD_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)

    # Re-run one photo with a stronger style from its form: the new result appears without a reload.
    driver.execute_script("window.sameDocument = true")
    first = driver.find_element(By.CSS_SELECTOR, "article.card[data-outcome=done]")
    first.find_element(By.TAG_NAME, "summary").click()
    weight = first.find_element(By.NAME, "style_weight")
    weight.clear()
    weight.send_keys("5000")
    screenshot(driver, shots / "web-1300.png", 1300)
    first.find_element(By.CSS_SELECTOR, "form.rerun button").click()
    wait_for(lambda: len(cards(driver)) == 3, 120, what="the re-run's result in the page")
    assert driver.execute_script("return window.sameDocument") is True
    paintings = [p for p in (tmp_path / "outbox" / "stripes").glob("*.png") if not p.name.endswith(".loss.png")]
    assert len(paintings) == 3
    screenshot(driver, shots / "web-420.png", 420)

    # Delete a result: its files and its card go.
    victim = driver.find_element(By.CSS_SELECTOR, "article.card[data-outcome=done]")
    victim_id = victim.get_attribute("id")
    href = victim.find_element(By.CSS_SELECTOR, "a.hero").get_attribute("href")
    image = tmp_path / "outbox" / href.split("/o/", 1)[1]
    assert image.is_file()
    victim.find_element(By.TAG_NAME, "summary").click()
    victim.find_element(By.CSS_SELECTOR, "form.delete button").click()
    wait_for(lambda: victim_id not in cards(driver), 60, what="the deleted card gone")
    assert not image.exists() and not image.with_suffix(".json").exists()
    # A slip of the thumb: the notice's undo brings it back, then it is deleted for good.
    driver.find_element(By.CSS_SELECTOR, ".toast form.undo button").click()
    wait_for(lambda: victim_id in cards(driver), 60, what="the card back after undo")
    assert image.is_file() and image.with_suffix(".json").is_file()
    victim = driver.find_element(By.ID, victim_id)
    victim.find_element(By.TAG_NAME, "summary").click()
    victim.find_element(By.CSS_SELECTOR, "form.delete button").click()
    wait_for(lambda: victim_id not in cards(driver), 60, what="the card gone again")
    assert not image.exists()
    assert driver.execute_script("return window.sameDocument") is True
    # The static gallery follows.
    wait_for(lambda: f'id="{victim_id}"' not in (tmp_path / "outbox" / "index.html").read_text(), 60,
             what="the static gallery without the deleted card")
    shutil.copy(tmp_path / "outbox" / "index.html", tmp_path / "index-after.html")


def test_photos_uploaded_from_the_browser_are_painted(web, browser, tmp_path):
    """A phone's camera roll, as selenium gives it: several files through the page's file input."""
    from selenium.webdriver.common.by import By
    url, daemon = web
    driver = browser
    driver.get(url + "/login")
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "form.upload input[type=file]"), 30,
             what="the upload form after login")
    camera = tmp_path / "camera"
    camera.mkdir()
    for i, name in enumerate(["IMG_0001.png", "IMG_0002.png", "notes.txt"]):
        (camera / name).write_bytes(png(20 + i) if name.endswith(".png") else b"not a photo")
    driver.find_element(By.CSS_SELECTOR, "form.upload input[type=file]").send_keys(
        "\n".join(str(p) for p in sorted(camera.iterdir())))
    done = "return [...document.querySelectorAll('ul.uploads li')].map(li => li.className + ':' + li.textContent)"
    wait_for(lambda: len([t for t in driver.execute_script(done) if t.split(":")[0]]) == 3, 60,
             what="three uploads answered")
    answers = driver.execute_script(done)
    assert sum(a.startswith("uploaded:") for a in answers) == 2 and any(
        a.startswith("bad:") and "notes.txt" in a for a in answers), answers
    bars = "return [...document.querySelectorAll('ul.uploads li')].map(li => li.className + ':' + " \
           "(li.querySelector('progress') ? li.querySelector('progress').value : 'none'))"
    assert sorted(driver.execute_script(bars)) == ["bad:none", "uploaded:100", "uploaded:100"]
    screenshot(driver, Path(os.environ.get("NSTD_SCREENSHOTS", tmp_path)) / "web-upload.png", 1000)
    # Taken by the daemon as dropped files: painted, and the page shows them without a reload.
    painted = [tmp_path / "outbox" / "stripes" / f"{name}__stripes.png" for name in ("IMG_0001", "IMG_0002")]
    wait_for(lambda: all(p.is_file() for p in painted), 180, what="both uploads painted")
    wait_for(lambda: len(cards(driver)) == 4, 60, what="the uploaded photos' cards")
    assert not list((tmp_path / "inbox").rglob("*.part"))


def test_a_job_that_starts_after_the_page_loaded_shows_its_preview_live(tmp_path, daemon_with, browser):
    """The page drawn with nothing running; then a photo dropped: its running card appears and its
    painting in progress with it, from the first preview, without a reload."""
    from nstd.review.web.auth import hash_password
    port = free_port()
    config, d = daemon_with({}, defaults={"size": 128, "iterations": 300},
                            extra=f"web:\n  listen: 127.0.0.1:{port}\n  password_hash: \"{hash_password(PASSWORD)}\"\n"
                                  "worker:\n  preview_every: 60\n")
    d.wait_ready()
    log = open(tmp_path / "web.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "nstd", "web", "--config", str(config)], cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: proc.poll() is None and _answers(port), 30, what="nstd web")
        browser.get(f"http://127.0.0.1:{port}/")
        wait_for(lambda: browser.execute_script("return document.readyState") == "complete", 30, what="the page")
        assert not browser.execute_script("return document.querySelector('article.running')")
        (tmp_path / "inbox" / "late.png").write_bytes(png(7, (160, 120)))
        # Its card is drawn before its first preview exists (60 iterations at 128 px): the preview
        # must then come in by the progress events alone.
        wait_for(lambda: browser.execute_script("return document.querySelector('article.running')"), 120,
                 what="the running card")
        assert not browser.execute_script("return document.querySelector('article.running img.preview')")
        shown = "const i = document.querySelector('article.running img.preview'); return i && i.complete && " \
                "i.naturalWidth > 0 ? i.getAttribute('src') : null"
        src = wait_for(lambda: browser.execute_script(shown), 120, what="the running card's live preview")
        assert src.startswith("/o/.nstd/previews/job")
        screenshot(browser, Path(os.environ.get("NSTD_SCREENSHOTS", tmp_path)) / "web-live-preview.png", 1000)
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def _answers(port: int) -> bool:
    try:
        return request(port, "GET", "/")[0] == 200
    except OSError:
        return False
