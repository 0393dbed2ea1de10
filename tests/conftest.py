"""Shared fixtures: tiny generated images, a shared engine, and a real daemon process."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]


# One timeout policy. Every wait ends on a condition (a row, a file, a log event). The number a test
# gives is about what the wait takes on an idle machine; the ceiling is PATIENCE times that, capped
# at MAX_WAIT, because a 2-core machine under a load of 6-8 runs this suite 5-10 times slower.
# pytest-timeout (pyproject, 900 s) stays above any single ceiling, so a test fails on its own
# assertion, with its message, rather than being killed.
PATIENCE = float(os.environ.get("NSTD_TEST_PATIENCE", "6"))
MAX_WAIT = 600.0


def wait_for(predicate, timeout=60.0, interval=0.1, what="condition"):
    """Poll until predicate() is truthy; fail the test with `what` once the ceiling has passed."""
    timeout = min(timeout * PATIENCE, max(MAX_WAIT, timeout))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def make_content(size=(48, 36), seed=0) -> Image.Image:
    """A small scene with edges and flat regions: sky, a sun, a house."""
    img = Image.new("RGB", size, (90 + seed * 20 % 100, 150, 220))
    d = ImageDraw.Draw(img)
    w, h = size
    d.rectangle([0, h * 2 // 3, w, h], fill=(40, 140, 50))
    d.ellipse([w - 16, 2, w - 4, 14], fill=(250, 220, 60))
    d.rectangle([6, h // 3, 22, h * 2 // 3 + 4], fill=(200, 80 + seed * 30 % 100, 60))
    d.polygon([(4, h // 3), (14, h // 6), (24, h // 3)], fill=(120, 30, 30))
    return img


def png(seed: int = 0, size=(48, 36)) -> bytes:
    """A distinct picture per seed, as PNG bytes: identical contents would rightly be painted once."""
    img = make_content(size, seed)
    for bit in range(min(16, size[0])):  # the seed's bits as a row of black and white pixels
        img.putpixel((bit, size[1] - 1), (255, 255, 255) if seed >> bit & 1 else (0, 0, 0))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def make_style(size=(48, 48)) -> Image.Image:
    """Diagonal stripes of saturated colours: a texture with a very different Gram matrix."""
    img = Image.new("RGB", size)
    px = img.load()
    colours = [(230, 40, 40), (250, 230, 30), (20, 40, 200)]
    for y in range(size[1]):
        for x in range(size[0]):
            px[x, y] = colours[((x + y) // 4) % 3]
    return img


@pytest.fixture(scope="session")
def engine():
    from nstd.engine import Engine, EngineOptions
    # float32 whatever the processor: the tests that compare numbers (tiled against whole, gradients)
    # hold to float32's precision; the bfloat16 path has its own test (tests/test_engine.py).
    return Engine(EngineOptions(mixed_precision="off"))


@pytest.fixture
def images(tmp_path):
    content, style = tmp_path / "content.png", tmp_path / "style.png"
    make_content().save(content)
    make_style().save(style)
    return content, style


TINY = {"size": 32, "iterations": 3}


FAST_WATCH = {"settle_seconds": 0.3, "poll_seconds": 0.2}


def write_config(folder: Path, extra: str = "", defaults: dict = TINY, rules: str | None = None,
                 watch: dict = FAST_WATCH) -> Path:
    (folder / "styles").mkdir(parents=True, exist_ok=True)
    make_style().save(folder / "styles" / "stripes.png")
    rules = rules or '  - match: "**/*"\n    style: stripes\n'
    text = ("inbox: ./inbox\noutbox: ./outbox\nstyles:\n  stripes: ./styles/stripes.png\n"
            f"rules:\n{rules}defaults:\n" + "".join(f"  {k}: {v}\n" for k, v in defaults.items())
            + "watch:\n" + "".join(f"  {k}: {v}\n" for k, v in watch.items()) + extra)
    path = folder / "config.yaml"
    path.write_text(text)
    return path


def job_rows(config: Path) -> list[dict]:
    """Every job with its input's relpath and hash, straight from the daemon's state file."""
    db = sqlite3.connect(config.parent / ".nstd" / "state.sqlite")
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute("SELECT jobs.*, inputs.relpath, inputs.sha256 FROM jobs JOIN "
                                            "inputs ON inputs.id = jobs.input_id ORDER BY jobs.id")]
    finally:
        db.close()


class DaemonProcess:
    """`nstd run` (or another long-running command: `worker`) as a real child process, its log in a
    file; torn down with its worker."""

    def __init__(self, config: Path, *args: str, env: dict | None = None, command: str = "run"):
        self.config = config
        self.log_path = config.parent / f"{command}-{time.monotonic_ns()}.log"
        self.log_file = open(self.log_path, "w")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc = subprocess.Popen([sys.executable, "-m", "nstd", "--log-json", command, "--config",
                                      str(config), *args], stdout=self.log_file, stderr=subprocess.STDOUT,
                                     env=env, cwd=ROOT)

    def events(self) -> list[dict]:
        out = []
        if not self.log_path.exists():  # moved away with its folder by the test (a moved nstd folder)
            return out
        for line in self.log_path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def saw(self, event: str, **fields) -> list[dict]:
        return [e for e in self.events() if e.get("event") == event
                and all(e.get(k) == v for k, v in fields.items())]

    def wait_ready(self, timeout=90):
        wait_for(lambda: self.saw("scanned inbox") or self.proc.poll() is not None, timeout, what="daemon start")
        assert self.proc.poll() is None, self.log_path.read_text()

    def worker_pid(self) -> int:
        return self.saw("worker ready")[-1]["pid"]

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()
        return self.proc.returncode


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def daemon_with(tmp_path, daemons):
    """daemon_with(files, **write_config kwargs): a config, an inbox holding files, a started daemon."""
    def start(files: dict[str, bytes], **config_kw):
        config = write_config(tmp_path, **config_kw)
        for rel, data in files.items():
            (tmp_path / "inbox" / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / "inbox" / rel).write_bytes(data)
        (tmp_path / "inbox").mkdir(exist_ok=True)
        d = daemons(config)
        d.wait_ready()
        return config, d
    return start


@pytest.fixture
def daemons():
    """Start daemons with daemons(config); every one (and its worker) is gone after the test."""
    started: list[DaemonProcess] = []

    def start(config: Path, *args: str, env: dict | None = None, command: str = "run") -> DaemonProcess:
        d = DaemonProcess(config, *args, env=env, command=command)
        started.append(d)
        return d

    yield start
    for d in started:
        workers = [e["pid"] for e in d.events() if e.get("event") == "worker ready"]
        d.stop()
        for pid in workers:
            wait_for(lambda: not pid_alive(pid), 15, what=f"worker {pid} to exit")


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
needs_chromium = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                    reason="Debian's chromium and chromium-driver are not installed")


@pytest.fixture
def browser(tmp_path):
    """Debian's headless chromium through selenium, logging every network request; quit after the test."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                 "--window-size=1300,1000", f"--user-data-dir={tmp_path / 'profile'}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()


def screenshot(driver, path: Path, width: int) -> Path:
    """The whole page at this CSS width (phones included: the window cannot be made that narrow)."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 600})
    driver.save_screenshot(str(path))
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    return path


REDIS_SERVER = shutil.which("redis-server")
needs_redis = pytest.mark.skipif(REDIS_SERVER is None, reason="Debian's redis-server is not installed")


class RedisServer:
    """A real redis-server on 127.0.0.1 and a free port, its data (AOF, fsync always) in a temp folder."""

    def __init__(self, folder: Path, port: int):
        self.folder, self.port = folder, port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.proc = None
        self.start()

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen([REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--dir", str(self.folder), "--appendonly", "yes", "--appendfsync", "always",
                                      "--save", "", "--protected-mode", "yes"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.answers, 30, what="redis-server to answer")

    def answers(self) -> bool:
        import redis
        assert self.proc.poll() is None, "redis-server exited"
        try:
            return redis.Redis(port=self.port, socket_timeout=1).ping()
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: redis fsyncs its AOF and exits
            self.proc.wait(30)


@pytest.fixture
def redis_server(tmp_path):
    from test_operations import free_port
    server = RedisServer(tmp_path / "redis", free_port())
    yield server
    server.stop()
