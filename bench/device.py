"""One run of every figure the design's machine needs, for the session that is lent a GPU.

    python bench/device.py --out device-figures.json             # on a GPU: about 5 minutes on an H100
    python bench/device.py --tiny --out figures.json             # on the CPU, tiny sizes (the suite runs this)
    bash bench/device.sh                                         # on the lent machine: installs what is missing

In one run, on the same device, each section's figures into one JSON file (printed as it goes):
* floors:  VGG-19 forward+backward to relu5_1 alone per iteration: float32, float32 channels_last,
           bfloat16 autocast, bfloat16 channels_last (the fastest is this device's floor), and
           nstd's default Engine.run per iteration at the output size against the fastest and the
           float32 floor, and the pastiche CLI's against the same (the peer);
* default: nstd's defaults (the pyramid, style strength 0.5, the precision `auto` picks) at 512
           and 1024 px: seconds, iterations, peak memory;
* seed:    the seed preset (400x400, 3000 Adam iterations): seconds and per iteration;
* print:   a 4096 px painting under a memory cap (tiled), within a time budget: seconds against
           the budget, tiles, peak memory;
* daemon:  `nstd run --until-idle` on a fresh folder with `device:` this device, three photos:
           seconds from start to three results, all three done.
Pictures are generated (nstd.samples): the lent machine has no copy of ../shared/images.
`--tiny` shrinks every size and count so that the whole script runs on a CPU in the suite
(tests/test_bench.py) and cannot rot; its figures mean nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from nstd.engine import Engine, EngineOptions, StyleImage, TransferParams  # noqa: E402
from nstd.engine.calibration import START_WEIGHT  # noqa: E402
from nstd.engine.params import params_from  # noqa: E402
from nstd.samples import paint_scene, paint_strokes  # noqa: E402
from speed import pastiche_run  # noqa: E402

FULL = {"floor_sizes": [512, 1024], "floor_iterations": 20, "default_sizes": [512, 1024],
        "seed": {"size": 400, "iterations": 3000}, "print": {"size": 4096, "cap_gb": 6.0, "budget": 120.0},
        "daemon": {"size": 512, "photos": 3}, "peer_steps": (10, 60)}
TINY = {"floor_sizes": [48], "floor_iterations": 2, "default_sizes": [48],
        "seed": {"size": 32, "iterations": 4}, "print": {"size": 192, "cap_gb": 0.2, "budget": 15.0},
        "daemon": {"size": 32, "photos": 2}, "peer_steps": (2, 10)}
LAYERS = TransferParams().style_layers + TransferParams().content_layers


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def floor_seconds(engine: Engine, dims: tuple[int, int], iterations: int, bf16: bool, channels_last: bool) -> float:
    """VGG-19 forward+backward alone, with the network's precision and memory layout chosen here."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = engine.net.to(memory_format=fmt)
    x = torch.randn(1, 3, dims[1], dims[0], device=engine.device).contiguous(memory_format=fmt).requires_grad_(True)

    def step():
        x.grad = None
        with torch.autocast(engine.device.type, dtype=torch.bfloat16, enabled=bf16):
            feats = net(x, LAYERS, "max")
        sum(f.float().pow(2).mean() for f in feats.values()).backward()

    step()
    sync(engine.device)
    start = time.perf_counter()
    for _ in range(iterations):
        step()
    sync(engine.device)
    return (time.perf_counter() - start) / iterations


def section_floors(engine: Engine, device: str, plan: dict, content, style, work: Path) -> dict:
    native = engine.precision == "bfloat16"
    out = {}
    for size in plan["floor_sizes"]:
        dims = (size, size * 3 // 4)
        row = {}
        for name, bf16, cl in (("float32", False, False), ("float32 channels_last", False, True),
                               ("bfloat16", True, False), ("bfloat16 channels_last", True, True)):
            if bf16 and not native and plan is not TINY:
                continue  # emulated bfloat16 on a CPU: minutes, and never the floor
            row[name] = floor_seconds(engine, dims, plan["floor_iterations"], bf16, cl)
        engine.net = engine.net.to(memory_format=torch.channels_last if engine.device.type == "cuda"
                                   else torch.contiguous_format)  # as Engine left it
        fastest = min(row.values())
        params = TransferParams(size=size, iterations=plan["floor_iterations"], scales=1, seed=0,
                                style_weight=START_WEIGHT, log_every=10_000)
        run = engine.run(content, [StyleImage(style, key="style")], params, progress=lambda p: None)
        ours = run.info["timings"]["seconds_per_iteration"]
        short, long_ = plan["peer_steps"]
        c, s = work / "content.png", work / "style.png"
        content.save(c)
        style.save(s)
        t_short = pastiche_run(c, s, size, short, device, work / "peer-a.png")
        t_long = pastiche_run(c, s, size, long_, device, work / "peer-b.png")
        peer = (t_long - t_short) / (long_ - short)
        out[f"{dims[0]}x{dims[1]}"] = {
            "floors_seconds": {k: round(v, 5) for k, v in row.items()},
            "fastest_floor": min(row, key=row.get),
            "nstd_default_seconds": round(ours, 5), "nstd_precision": engine.precision,
            "nstd_vs_fastest_floor": round(ours / fastest, 3), "nstd_vs_float32_floor": round(ours / row["float32"], 3),
            "pastiche_seconds": round(peer, 5), "pastiche_vs_fastest_floor": round(peer / fastest, 3),
            "nstd_vs_pastiche": round(ours / peer, 3)}
    return out


def painted(engine: Engine, content, style, params: TransferParams) -> dict:
    sync(engine.device)
    start = time.perf_counter()
    result = engine.run(content, [StyleImage(style, key="style")], params, progress=lambda p: None)
    sync(engine.device)
    info = result.info
    return {"seconds": round(time.perf_counter() - start, 3), "output_size": info["output_size"],
            "iterations": info["timings"]["iterations"],
            "seconds_per_iteration_at_output": info["timings"]["seconds_per_iteration"],
            "precision": info["precision"], "peak_memory_gib": round(info["peak_memory_bytes"]["bytes"] / 2**30, 3),
            "schedule": [{k: s.get(k) for k in ("size", "iterations", "seconds", "tile_core")}
                         for s in info["schedule"]],
            "final_loss": round(result.final["total"], 5)}


def section_daemon(device: str, plan: dict, work: Path) -> dict:
    """The daemon end to end on this device, as a user starts it: a folder, a config, photos, a run."""
    root = work / "daemon"
    for name in ("inbox", "outbox", "archive", "failed", "state", "styles"):
        (root / name).mkdir(parents=True)
    paint_strokes(3).save(root / "styles" / "strokes.png")
    for i in range(plan["photos"]):
        paint_scene(40 + i).save(root / "inbox" / f"photo{i}.png")
    (root / "config.yaml").write_text(
        "inbox: ./inbox\noutbox: ./outbox\narchive: ./archive\nfailed: ./failed\nstate: ./state/nstd.sqlite\n"
        "styles:\n  strokes: ./styles/strokes.png\nrules:\n  - match: '**/*'\n    style: strokes\n"
        f"defaults:\n  size: {plan['size']}\n"
        f"worker:\n  device: {device}\nwatch:\n  settle_seconds: 0.5\n")
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "nstd", "run", "--config", str(root / "config.yaml"), "--until-idle"],
                          capture_output=True, text=True, timeout=900, env=os.environ | {"PYTHONPATH": path})
    seconds = time.perf_counter() - start
    results = sorted(p.name for p in (root / "outbox").rglob("*__*.png") if not p.name.endswith(".loss.png"))
    if done.returncode != 0 or len(results) != plan["photos"]:
        raise SystemExit(f"the daemon did not paint every photo (exit {done.returncode}, {results}):\n"
                         + done.stderr[-3000:])
    return {"photos": plan["photos"], "results": len(results), "seconds_start_to_all_done": round(seconds, 2),
            "size": plan["size"], "device": device}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("device-figures.json"), help="the figures' file")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--tiny", action="store_true", help="tiny sizes on any device: the suite's run, no figures")
    ap.add_argument("--only", nargs="*", choices=["floors", "default", "seed", "print", "daemon"],
                    help="these sections alone (default: all)")
    args = ap.parse_args()
    plan = TINY if args.tiny else FULL
    engine = Engine(EngineOptions(device=args.device))
    device = str(engine.device)
    content, style = paint_scene(1, (640, 480)), paint_strokes(2, (512, 512))
    figures = {"machine": {"device": device, "name": (torch.cuda.get_device_name(engine.device)
                                                      if engine.device.type == "cuda" else platform.processor()),
                           "torch": torch.__version__, "precision_auto": engine.precision, "tiny": args.tiny,
                           "cpu_threads": torch.get_num_threads()},
               "sections": {}}
    wanted = args.only or ["floors", "default", "seed", "print", "daemon"]
    began = time.perf_counter()

    def record(name: str, compute) -> None:
        start = time.perf_counter()
        figures["sections"][name] = compute() | {"section_seconds": round(time.perf_counter() - start, 2)}
        print(json.dumps({name: figures["sections"][name]}, indent=1), flush=True)
        args.out.write_text(json.dumps(figures, indent=1) + "\n")  # what is done survives a later section's end

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if "floors" in wanted:
            record("floors", lambda: section_floors(engine, device, plan, content, style, work))
        if "default" in wanted:
            record("default", lambda: {f"{s}px": painted(engine, content, style, TransferParams(size=s, seed=0)
                                                         .replace(**({"iterations": 3} if args.tiny else {})))
                                       for s in plan["default_sizes"]})
        if "seed" in wanted:
            seed = plan["seed"]
            record("seed", lambda: painted(engine, content, style, params_from(
                "seed", size=seed["size"], iterations=seed["iterations"], seed=0, log_every=10_000)))
        if "print" in wanted:
            p = plan["print"]
            capped = Engine(EngineOptions(device=args.device, max_memory_gb=p["cap_gb"]))
            record("print", lambda: painted(capped, content, style, TransferParams(
                size=p["size"], budget_seconds=p["budget"], seed=0, log_every=10_000)) | {
                "budget_seconds": p["budget"], "cap_gb": p["cap_gb"]})
        if "daemon" in wanted:
            record("daemon", lambda: section_daemon(device, plan["daemon"], work))
    figures["total_seconds"] = round(time.perf_counter() - began, 1)
    args.out.write_text(json.dumps(figures, indent=1) + "\n")
    print(f"figures in {args.out} ({figures['total_seconds']} s)")


if __name__ == "__main__":
    main()
