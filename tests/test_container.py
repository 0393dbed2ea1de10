"""The container image, built and run for real with podman (issue 33).

No registry is reachable here, so the base is Debian's own, made by mmdebstrap from Debian's
packages and imported (`podman import`); the build's pip reads this machine's package sources
(its pip config, mounted read-only for the build only), as a user's reads PyPI. runc needs lower
rlimits than podman's defaults in this sandbox: a containers.conf of the test's own says so.
The image is built once per session and run on a mounted folder: the daemon lays it out, paints
a dropped photo into the mounted outbox, and the web app in a second container shows it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, png, wait_for
from test_operations import free_port


IMAGE = "localhost/nstd:test"
BASE = "localhost/nstd-base:bookworm"
NEEDS_GB = 30
# The host's pip settings, the CA bundle its proxy needs and the package sources, where present.
PIP_SOURCES = ("/etc/pip.conf", "/etc/xdg/pip", "/etc/ssl/certs/ca-certificates.crt",
               "/opt/wheels", "/opt/pypi", "/opt/pypi-more")
LIMITS = '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]\n'


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "podman here runs as root (CI does)"
    for tool in ("podman", "runc", "mmdebstrap"):
        if not shutil.which(tool):
            return f"{tool} is not installed (.ci/run installs it: apt-get install podman runc mmdebstrap)"
    store = Path("/var/lib/containers")
    store.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(store).free / 2**30
    if free < NEEDS_GB:
        return f"{free:.0f} GB free under {store}; the image's build needs about {NEEDS_GB}"
    return None


def _podman(*args: str, timeout: float = 120, check: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, check=check,
                          env=os.environ | {"CONTAINERS_CONF": str(_podman.conf)}, **kw)


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> str:
    why = _why_not()
    if why:
        pytest.skip(why)
    work = tmp_path_factory.mktemp("container")
    _podman.conf = work / "containers.conf"
    _podman.conf.write_text(LIMITS)
    if _podman("image", "exists", BASE, check=False).returncode != 0:
        tar = work / "base.tar"
        subprocess.run(["mmdebstrap", "--quiet", "--variant=apt", "--include=ca-certificates,python3,python3-venv",
                        "bookworm", str(tar)], check=True, timeout=900)
        _podman("import", str(tar), BASE, timeout=300)
        tar.unlink()
    mounts = [f"--volume={p}:{p}:ro" for p in PIP_SOURCES if os.path.exists(p)]
    build = _podman("build", "--network=host", *mounts, f"--build-arg=BASE={BASE}", "-t", IMAGE, str(ROOT),
                    timeout=1800, check=False)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    return IMAGE


def _logs(name: str) -> str:
    done = _podman("logs", name, check=False)
    return done.stdout[-4000:] + done.stderr[-4000:]


@pytest.mark.slow
@pytest.mark.container
def test_the_image_lays_out_a_mounted_folder_paints_a_dropped_photo_and_its_web_app_shows_it(image, tmp_path):
    data = tmp_path / "nstd-data"
    data.mkdir()
    os.chown(data, 1000, 1000)  # as compose's `user:` would be: the folder's owner runs nstd
    daemon, web = f"nstd-test-{os.getpid()}", f"nstd-web-test-{os.getpid()}"
    common = ["--user=1000:1000", f"--volume={data}:/srv/nstd", "--network=none"]
    try:
        _podman("run", "-d", f"--name={daemon}", *common, image)
        config = data / "config.yaml"
        wait_for(lambda: config.exists() and (data / "styles" / "swirls.jpg").exists(), 120,
                 what="the daemon's first start to lay out the folder")
        wait_for(lambda: '"watching"' in _logs(daemon), 180, what="the daemon watching its inbox")
        _podman("stop", "--time=30", daemon, timeout=90)
        # The example's defaults take minutes a photo on two cores: a thumbnail's worth instead.
        text = config.read_text()
        assert "  size: 512\n  iterations: 50 " in text
        config.write_text(text.replace("  size: 512\n  iterations: 50 ", "  size: 48\n  iterations: 6 "))
        _podman("start", daemon)
        photo = data / "inbox" / "holiday.png"
        photo.write_bytes(png(7))
        os.chown(photo, 1000, 1000)
        result = data / "outbox" / "swirls" / "holiday__swirls.jpg"
        wait_for(lambda: result.exists() and (data / "archive" / "holiday.png").exists(), 600,
                 what=f"the painting in the mounted outbox; the daemon said:\n{_logs(daemon)}")
        assert result.stat().st_uid == 1000 and result.with_suffix(".json").exists()

        port = free_port()
        _podman("run", "-d", f"--name={web}", "--user=1000:1000", f"--volume={data}:/srv/nstd",
                f"--publish=127.0.0.1:{port}:8040", image, "web")

        def page() -> str:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as reply:
                    return reply.read().decode()
            except OSError:
                return ""  # not listening yet: wait_for asks again

        assert "holiday" in wait_for(page, 180, what=f"the web app's page; it said:\n{_logs(web)}")
        status = _podman("exec", daemon, "nstd-entrypoint", "status", check=False)
        assert status.returncode == 0 and "daemon: running" in status.stdout, status.stdout + status.stderr
    finally:
        for name in (web, daemon):
            _podman("rm", "--force", "--time=5", name, check=False, timeout=90)


def _entrypoint(root: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """The image's entrypoint script on this machine, with this venv's nstd on its PATH."""
    env = os.environ | {"NSTD_ROOT": str(root), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    return subprocess.run(["sh", str(ROOT / "container" / "entrypoint.sh"), *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.mark.slow
def test_the_entrypoint_lays_out_an_empty_folder_then_runs_the_command_on_its_config(tmp_path):
    """The same script outside a container: the daemon's first start makes the folder (nstd init),
    later commands get --config, and a command that needs no config runs as it is."""
    root = tmp_path / "nstd-data"
    root.mkdir()
    first = _entrypoint(root, "run", "--until-idle")
    assert first.returncode == 0, first.stdout + first.stderr
    assert (root / "config.yaml").exists() and (root / "styles" / "swirls.jpg").exists()
    assert all((root / f).is_dir() for f in ("inbox", "outbox", "archive", "failed", "state"))
    status = _entrypoint(root, "status")
    assert status.returncode == 0 and "daemon: NOT RUNNING" in status.stdout, status.stdout + status.stderr
    assert _entrypoint(root, "--help").returncode == 0
    refused = _entrypoint(root, "web", "--listen", "no-port")
    assert refused.returncode == 2 and "is not host:port" in refused.stderr


def test_compose_runs_the_images_commands_on_the_folder_the_image_declares():
    """compose.yaml, the Containerfile and the entrypoint agree: the folder, the port, the commands."""
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    containerfile = (ROOT / "Containerfile").read_text()
    entrypoint = (ROOT / "container" / "entrypoint.sh").read_text()
    assert 'VOLUME ["/srv/nstd"]' in containerfile and "NSTD_ROOT=/srv/nstd" in containerfile
    assert "EXPOSE 8040" in containerfile and "0.0.0.0:8040" in entrypoint
    services = compose["services"]
    ours = [s for s in services.values() if s.get("image") != services["redis"]["image"]]
    assert {s["command"][0] for s in ours} == {"run", "web", "worker"}
    for name in ("nstd", "web", "worker"):
        assert any(v.endswith(":/srv/nstd") for v in services[name]["volumes"]), name
        assert services[name]["user"] == "${NSTD_UID:-1000}:${NSTD_GID:-1000}"
    assert services["web"]["ports"] == ["127.0.0.1:${NSTD_WEB_PORT:-8040}:8040"]
    gpu = yaml.safe_load((ROOT / "compose.gpu.yaml").read_text())
    assert gpu["services"]["nstd"]["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == "nvidia"
    assert subprocess.run(["sh", "-n", str(ROOT / "container" / "entrypoint.sh")]).returncode == 0


def test_docker_and_podman_build_the_same_context_and_the_compose_file_names_only_true_keys():
    """Docker reads .dockerignore (not .containerignore) and Dockerfile (not Containerfile): both are
    named, and the same; every config key compose.yaml names exists."""
    import re

    from nstd.reference import config_keys
    assert (ROOT / ".dockerignore").read_text() == (ROOT / ".containerignore").read_text()
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    build = compose["x-nstd"]["build"]
    assert (ROOT / build["context"] / build["dockerfile"]).is_file()
    keys = {path for path, *_ in config_keys()}
    named = set(re.findall(r"\b((?:worker|web|watch|notify|metrics)\.[a-z_]+)", (ROOT / "compose.yaml").read_text()))
    assert named and named <= keys, named - keys
