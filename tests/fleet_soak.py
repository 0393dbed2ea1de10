"""The long faults-anywhere soak of the redis backend, run by hand (the suite runs a short one):

    .venv/bin/python tests/fleet_soak.py --inputs 40 --faults 30 [--iterations 200] [--seed N] [--workdir DIR]

A burst over two `nstd worker` hosts and one daemon while Redis, the hosts and the daemon are
killed, stopped and restarted at random. Prints the figures for the record, then PASS or FAIL.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path

from chaos import print_figures
from fleet_chaos import kept_the_promise, run_fleet_chaos


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--inputs", type=int, default=40)
    ap.add_argument("--faults", type=int, default=30)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--max-gap", type=float, default=8.0, help="longest wait between two faults (s)")
    ap.add_argument("--iterations", type=int, default=200, help="per photo: long enough to span the faults")
    ap.add_argument("--workdir", type=Path)
    args = ap.parse_args()
    folder = args.workdir or Path(tempfile.mkdtemp(prefix="nstd-fleet-soak-"))
    r = run_fleet_chaos(folder, args.inputs, args.faults, args.seed, args.max_gap, args.iterations)
    ok = kept_the_promise(r)
    print_figures(r, {**{k: r[k] for k in ("inputs", "minutes", "settled_after_last_fault_s", "done", "failed",
                                           "lost", "wrong_hash", "temps", "integrity", "job_states")},
                      "faults": dict(Counter(r["faults"]))}, folder, ok)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
