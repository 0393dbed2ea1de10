"""The long crash-anywhere soak, run by hand (the suite runs a short one):

    .venv/bin/python tests/soak.py --inputs 150 --kills 80 [--seed N] [--workdir DIR]

Prints the figures for the record: inputs, kills, minutes, done, failed, lost (must be 0).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from chaos import print_figures, run_chaos


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--inputs", type=int, default=150)
    ap.add_argument("--kills", type=int, default=80)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--max-wait", type=float, default=6.0, help="longest run before a kill (s)")
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--plain", action="store_true", help="photos only, no hostile entries mixed in")
    args = ap.parse_args()
    folder = args.workdir or Path(tempfile.mkdtemp(prefix="nstd-soak-"))
    r = run_chaos(folder, args.inputs, args.kills, args.seed, args.max_wait, hostile=not args.plain)
    ok = (r["lost"] == 0 and not r["left_in_inbox"] and r["results"] == r["expected_results"]
          and not r["temps"] and r["integrity"] == "ok" and r["final_rc"] == 0 and r["outside_untouched"])
    print_figures(r, {k: r[k] for k in ("inputs", "kills", "minutes", "done", "failed", "lost", "temps",
                                        "integrity", "job_states", "input_states")}, folder, ok)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
