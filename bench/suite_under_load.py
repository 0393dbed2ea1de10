"""Run the whole test suite while other work keeps every core busy, as on a user's laptop.

    .venv/bin/python bench/suite_under_load.py [--burners 2] [-- PYTEST ARGS]

Starts N processes that burn a CPU each (busy loops), runs `python -m pytest -q` beside them,
stops them, and prints the load average seen, the suite's result and its duration. Exit code:
pytest's.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BURN = "import itertools\nfor _ in itertools.count(): pass\n"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--burners", type=int, default=2)
    ap.add_argument("pytest_args", nargs="*")
    args = ap.parse_args()
    burners = [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(args.burners)]
    start = time.monotonic()
    try:
        suite = subprocess.run([sys.executable, "-m", "pytest", "-q", *args.pytest_args], cwd=ROOT)
        load = os.getloadavg()
    finally:
        for b in burners:
            b.kill()
            b.wait()
    minutes = (time.monotonic() - start) / 60
    print(f"\nunder load: {args.burners} CPU burners on {os.cpu_count()} cores, load average at the end "
          f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1/5/15 min); suite exit code {suite.returncode} "
          f"in {minutes:.1f} min")
    return suite.returncode


if __name__ == "__main__":
    sys.exit(main())
