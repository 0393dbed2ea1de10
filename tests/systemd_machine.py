"""A real systemd as PID 1 of its own namespaces, over an overlay of this machine's `/`, for the
tests of the units (tests/test_systemd_real.py). Nothing of the host is changed: writes land in a
tmpfs, the network namespace has only `lo`. The scripts in systemd_ns/ boot and tear it down.

The venv the units run is made as the install guide (docs/operating/service.md) says, but on the
host side (pip needs the package registries, which the namespace cannot reach), in a private
mount namespace where /opt/nstd is the folder that systemd's namespace binds at /opt/nstd: the
same paths inside and out.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from pathlib import Path

from conftest import ROOT

SCRIPTS = Path(__file__).parent / "systemd_ns"
GUIDE = ROOT / "docs" / "operating" / "service.md"  # the install guide, whose lines the test runs
CLEAN_ENV = ["env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8"]


def why_not_here() -> str | None:
    """The reason this machine cannot boot a systemd in namespaces, or None if it can."""
    if os.geteuid() != 0:
        return "needs root to make namespaces"
    for tool in ("unshare", "nsenter", "runuser", "setfacl"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if not any(Path(p).exists() for p in ("/lib/systemd/systemd", "/usr/lib/systemd/systemd")):
        return "systemd is not installed (apt-get install systemd)"
    if not Path("/usr/bin/python3").exists():
        return "no /usr/bin/python3 for the service's venv"
    probe = subprocess.run(["unshare", "--mount", "--pid", "--net", "--fork", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"namespaces cannot be made here: {probe.stderr.strip()}"
    return None


def readme_install_lines() -> list[str]:
    """The install guide's steps, as commands (without sudo and comments)."""
    block = GUIDE.read_text().split("<!-- install: begin -->")[1].split("<!-- install: end -->")[0]
    lines = [line.strip() for line in block.splitlines() if line.strip()]
    return [line.removeprefix("sudo ").split("  #")[0].strip() for line in lines]


def install_venv(state: Path, lines: list[str]) -> None:
    """The install guide's venv and pip lines, run with /opt/nstd being state/opt-nstd (an overlay keeps
    the host's /opt as it is; pip reaches the registries from here)."""
    (state / "opt-nstd").mkdir(parents=True, exist_ok=True)
    for d in ("upper", "work"):
        (state / "opt-overlay" / d).mkdir(parents=True, exist_ok=True)
    steps = " && ".join(line.replace("/path/to/nstd", shlex.quote(str(ROOT))) for line in lines)
    script = (f"set -e; mount -t overlay nstd-test-opt -o lowerdir=/opt,upperdir={state}/opt-overlay/upper,"
              f"workdir={state}/opt-overlay/work /opt; mkdir -p /opt/nstd; mount --bind {state}/opt-nstd /opt/nstd; "
              f"cd /; {steps}")
    r = subprocess.run(["unshare", "--mount", "--propagation", "private", "bash", "-c", script],
                       capture_output=True, text=True, timeout=1500)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


class Machine:
    def __init__(self, state: Path):
        self.state = state
        r = subprocess.run(["bash", str(SCRIPTS / "boot.sh"), str(state)], capture_output=True, text=True, timeout=300,
                           env={**os.environ, "NSTD_CHECKOUT": str(ROOT)})
        assert r.returncode == 0, r.stdout + r.stderr + (state / "console.log").read_text(errors="replace")
        self.pid = int((state / "systemd.pid").read_text())

    def sh(self, script: str, user: str | None = None, check: bool = True, stdin: bytes | None = None,
           timeout: float = 300) -> subprocess.CompletedProcess:
        """Run a bash script inside, as root or as `user` (with that user's groups)."""
        if user:
            script = f"runuser -u {user} -- bash -c {shlex.quote(script)}"
        r = subprocess.run(["nsenter", "-t", str(self.pid), "-a", *CLEAN_ENV, "bash", "-c", script],
                           input=stdin, capture_output=True, timeout=timeout)
        out = subprocess.CompletedProcess(r.args, r.returncode, r.stdout.decode(errors="replace"),
                                          r.stderr.decode(errors="replace"))
        assert not check or r.returncode == 0, f"{script}\n-> {r.returncode}\n{out.stdout}\n{out.stderr}"
        return out

    def write(self, path: str, data: bytes, user: str = "root", umask: str = "022") -> None:
        self.sh(f"umask {umask}; cat > {shlex.quote(path)}", user=user if user != "root" else None, stdin=data)

    def exists(self, path: str) -> bool:
        return self.sh(f"test -e {shlex.quote(path)}", check=False).returncode == 0

    def journal(self, unit: str, *args: str) -> str:
        return self.sh(f"journalctl --no-pager -o cat -u {unit} {' '.join(args)}", check=False).stdout

    def show(self, unit: str, prop: str) -> str:
        return self.sh(f"systemctl show -p {prop} --value {unit}", check=False).stdout.strip()

    def nstd(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.sh(f"/opt/nstd/venv/bin/nstd {' '.join(map(shlex.quote, args))} --config /etc/nstd/config.yaml",
                       user="nstd", check=check)

    def teardown(self) -> None:
        subprocess.run(["bash", str(SCRIPTS / "teardown.sh"), str(self.state)], capture_output=True, timeout=180)


def wait_inside(predicate, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while True:
        got = predicate()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
