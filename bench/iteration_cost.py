"""Where one iteration's time goes beyond the floor (VGG-19 forward+backward alone).

    python bench/iteration_cost.py [--size 256] [--iterations 20] [--rounds 3]

In one run, interleaved over several rounds (a busy machine slows all of them alike), the seconds
per iteration of, at the same size and on the same images:
  floor float32    VGG-19 forward+backward to relu5_1 in float32 (bench/speed.py's floor);
  floor bfloat16   the same under bfloat16 autocast (mixed_precision: on), channels_last on CUDA;
  the rows below run nstd's default engine (mixed_precision: auto, the precision printed):
  objective  nstd's loss (content, five Gram matrices, TV) forward and backward, no optimiser;
  ... autograd Gram  the same with the Gram matrix's backward left to autograd (two products, not one);
  + L-BFGS   that plus one L-BFGS step (history 100), as `Engine.run` takes it;
  Engine.run the whole thing: targets once, progress callback, trace every log_every.
Each row's ratio to the fastest of the two floors (this device's real floor) and to the float32
floor, and the minimum over rounds, are printed. By hand; not a test.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from nstd.engine import Engine, EngineOptions, StyleImage, TransferParams  # noqa: E402
from nstd.engine.calibration import START_WEIGHT  # noqa: E402
from nstd.engine import losses  # noqa: E402
from nstd.engine.transfer import output_dims  # noqa: E402
from nstd.core.images import load_image  # noqa: E402
from speed import SHARED, floor_engines, floor_seconds  # noqa: E402


def per_iteration(step, iterations: int) -> float:
    step()  # warm-up
    start = time.perf_counter()
    for _ in range(iterations):
        step()
    return (time.perf_counter() - start) / iterations


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--content", type=Path, default=SHARED / "tubingen.jpg")
    ap.add_argument("--style", type=Path, default=SHARED / "starry_night.jpg")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--emulated", action="store_true", help="time the bfloat16 floor also where the CPU emulates "
                    "it (19x float32 at 64x48 and 46x at 128x96 on an AVX2-only EPYC: minutes at 256 px)")
    args = ap.parse_args()
    engine = Engine(EngineOptions(device=args.device))
    floors = floor_engines(args.device, args.emulated)
    content, style = load_image(args.content), load_image(args.style)
    params = TransferParams(size=args.size, iterations=args.iterations, scales=1, seed=0, style_weight=START_WEIGHT)
    dims = output_dims(*content.size, params)
    c = engine.to_tensor(content, dims)
    objective = engine.objective(c, [StyleImage(style, key="bench")], dims, params)
    x = c.detach().contiguous().requires_grad_(True)

    def objective_step():
        x.grad = None
        objective(x)[0].backward()

    optimiser = torch.optim.LBFGS([x], lr=1.0, max_iter=1, history_size=100)

    def lbfgs_step():
        def closure():
            optimiser.zero_grad(set_to_none=True)
            loss = objective(x)[0]
            loss.backward()
            return loss
        optimiser.step(closure)

    def run_per_iteration() -> float:
        result = engine.run(content, [StyleImage(style, key="bench")], params, progress=lambda p: None)
        return result.info["timings"]["seconds_per_iteration"]

    def plain_gram(features):
        b, c, h, w = features.shape
        flat = features.reshape(b, c, h * w).float()
        return torch.bmm(flat, flat.transpose(1, 2)) / (h * w)

    def autograd_gram_step():
        ours, losses.gram = losses.gram, plain_gram
        try:
            objective_step()
        finally:
            losses.gram = ours

    rows: dict[str, list[float]] = {**{name: [] for name in floors}, "objective": [], "... autograd Gram": [],
                                    "+ L-BFGS": [], "Engine.run": []}
    for _ in range(args.rounds):
        for name, floor_engine in floors.items():
            rows[name].append(floor_seconds(floor_engine, dims, args.iterations))
        rows["objective"].append(per_iteration(objective_step, args.iterations))
        rows["... autograd Gram"].append(per_iteration(autograd_gram_step, args.iterations))
        rows["+ L-BFGS"].append(per_iteration(lbfgs_step, args.iterations))
        rows["Engine.run"].append(run_per_iteration())
    fp32 = min(rows["floor float32"])
    fastest = min(min(rows[name]) for name in floors)
    print(f"{dims[0]}x{dims[1]} on {engine.device}, {args.iterations} iterations x {args.rounds} rounds, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}; nstd's default runs the network in "
          f"{engine.precision}")
    print(f"{'':18s} {'min s/it':>9s} {'median':>9s} {'vs fastest floor':>17s} {'vs float32 floor':>17s}")
    for name, values in rows.items():
        print(f"{name:18s} {min(values):9.4f} {statistics.median(values):9.4f} {min(values) / fastest:17.3f} "
              f"{min(values) / fp32:17.3f}")


if __name__ == "__main__":
    main()
