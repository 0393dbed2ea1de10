"""One run's optimisation: the pyramid's scales in turn, each an optimiser over the image, with
the trace, progress reports and, under a time budget, re-planning from measured iteration costs."""

from __future__ import annotations

import math
from time import perf_counter
from typing import Callable, Optional, Protocol, Sequence

import torch

from . import optim, pyramid
from .calibration import START_WEIGHT, WeightSearch, checkpoints
from .errors import ParameterError
from .params import TransferParams
from .records import Progress, StyleImage

# Iterations timed at each scale before a budgeted run re-plans (the first is a warm-up), and how
# often it re-plans after, from the cost since the last re-plan: a machine that slows down mid-run
# (another job, thermal limits) shrinks what is left instead of overrunning the budget.
TIMED_ITERATIONS = 3
REPLAN_EVERY = 10


class Canvas(Protocol):
    """What a run needs of the engine: images to tensors and back, and the objective to minimise."""
    device: torch.device

    def to_tensor(self, image, dims: tuple[int, int]) -> torch.Tensor: ...
    def normalise(self, rgb01: torch.Tensor) -> torch.Tensor: ...
    def rgb01(self, normalised: torch.Tensor) -> torch.Tensor: ...
    def to_image(self, normalised: torch.Tensor): ...
    def memory_plan(self, dims: tuple[int, int], params: TransferParams, iterations: int): ...
    def objective(self, content: torch.Tensor, styles: Sequence[StyleImage], dims: tuple[int, int],
                  params: TransferParams, plan=None): ...


class Optimisation:
    """Runs the schedule for one content image; `Engine.run` builds it and reads its outcome."""

    clock = staticmethod(perf_counter)  # a test's stand-in clock makes budget plans exact

    def __init__(self, engine: Canvas, content, styles: Sequence[StyleImage], params: TransferParams,
                 final_dims: tuple[int, int], init_image=None, progress=None):
        self.engine, self.content, self.styles, self.params = engine, content, styles, params
        self.init_image, self.progress = init_image, progress
        dims = pyramid.scale_dims(final_dims, params.first_scale, params.scales)
        self.weights = pyramid.iteration_weights(dims)
        self.schedule = pyramid.plan(dims, params.iterations)
        self.generator = torch.Generator().manual_seed(params.seed if params.seed is not None else torch.seed())
        self.trace: list[dict] = []
        self.last: dict = {}
        self.ran: list[dict] = []  # per scale: size, iterations, seconds
        self.target_seconds = 0.0
        self.done = 0
        self.start = 0.0
        self.objective: Optional[Callable] = None  # the last scale's
        self.plan = None  # the last scale's memory plan
        self.search: Optional[WeightSearch] = None
        if params.style_weight is None:
            self.search = WeightSearch(params.style_strength, START_WEIGHT)
            self.params = params.replace(style_weight=START_WEIGHT)

    @property
    def decay(self) -> float:
        p = self.params
        return p.average if p.average is not None else (0.0 if p.optimizer == "lbfgs" else 0.9)

    def run(self) -> torch.Tensor:
        self.start = self.clock()
        image: Optional[torch.Tensor] = None
        optimiser: Optional[torch.optim.Optimizer] = None
        for level in range(len(self.schedule)):
            image, optimiser = self._scale(level, image, optimiser)
        return image

    def _scale(self, level: int, previous: Optional[torch.Tensor], previous_optimiser):
        engine, params = self.engine, self.params
        dims = self.schedule[level].dims
        t0 = self.clock()
        content = engine.to_tensor(self.content, dims)
        self.plan = engine.memory_plan(dims, self.params, self.schedule[level].iterations)
        self.objective = engine.objective(content, self.styles, dims, self.params, self.plan)
        self.target_seconds += self.clock() - t0
        x = self._initial(previous, content, dims)
        optimiser = optim.make_optimiser(x, params, self.plan.history)
        if params.optimizer == "adam" and previous_optimiser is not None:
            optim.carry_adam_state(previous_optimiser, optimiser, dims)
        average = optim.IterateAverage(self.decay) if self.decay > 0 else None
        current = (lambda: average.value()) if average else (lambda: x)
        began = self.clock()
        window = (0, began)  # (iterations, clock) at the last re-plan
        record: dict = {}

        def closure():
            optimiser.zero_grad(set_to_none=True)
            loss, terms, per_layer = self.objective(x)
            loss.backward()
            record.update(terms=terms, per_layer=per_layer, total=loss)
            return loss

        it = 0
        calibrate_at = checkpoints(self.schedule[level].iterations) if self.search and level == 0 else set()
        while it < self.schedule[level].iterations:
            optimiser.step(closure)
            if params.optimizer == "adam":
                with torch.no_grad():  # keep pixels displayable; L-BFGS is clamped at the end
                    x.copy_(engine.normalise(engine.rgb01(x).clamp(0, 1)))
            if average:
                average.update(x)
            it += 1
            self.done += 1
            if it == 1:
                window = (it, self.clock())
            if params.budget_seconds and (it == TIMED_ITERATIONS
                                          or (it > TIMED_ITERATIONS and it % REPLAN_EVERY == 0)):
                now = self.clock()
                self._replan(level, it, (now - window[1]) / (it - window[0]))
                window = (it, now)
            if params.budget_seconds and self._out_of_time(level, it, began):
                self.schedule[level] = pyramid.Scale(dims, it)
            elif params.budget_seconds and level + 1 == len(self.schedule) and it == self.schedule[level].iterations:
                # The clock ends the last scale, not the plan's count, which rounds down: a 1024 px
                # run at a 60 s budget ended at 55 s with one 4 s iteration still nearer the budget.
                self.schedule[level] = pyramid.Scale(dims, it + 1)
            self._report(level, it, record, current)
            if it in calibrate_at:
                optimiser = self._recalibrate(record, content, dims, x, optimiser)
        self.ran.append({"size": list(dims), "iterations": it, "seconds": round(self.clock() - began, 4),
                         **({"tile_core": self.plan.core, "history": self.plan.history} if self.plan.tiled else {})})
        # L-BFGS's history (two image-sized vectors per iteration) must not outlive its scale.
        return current().detach(), optimiser if params.optimizer == "adam" else None

    def _recalibrate(self, record: dict, content, dims, x, optimiser) -> torch.optim.Optimizer:
        """The style weight moved towards the strength's content distance. L-BFGS starts afresh, its
        curvature history being of the old objective; Adam's moment estimates carry over."""
        distance = math.sqrt(max(record["terms"]["content"].item(), 0.0) / self.params.content_weight)
        self.params = self.params.replace(style_weight=self.search.observe(distance))
        t0 = self.clock()
        self.objective = self.engine.objective(content, self.styles, dims, self.params, self.plan)
        self.target_seconds += self.clock() - t0
        return optimiser if self.params.optimizer == "adam" else optim.make_optimiser(x, self.params, self.plan.history)

    def _replan(self, level: int, done: int, seconds_per_iteration: float) -> None:
        left = self.params.budget_seconds - (self.clock() - self.start)
        pixels = self.schedule[level].pixels
        tail = pyramid.fit([s.dims for s in self.schedule[level:]], self.weights[level:], left,
                           seconds_per_iteration / pixels, done_at_first=done)
        self.schedule[level:] = tail

    def _out_of_time(self, level: int, it: int, began: float) -> bool:
        # Only the last scale stops on the clock.
        if level + 1 < len(self.schedule):
            return False
        now = self.clock()
        return pyramid.stop_now(now - self.start, (now - began) / it, self.params.budget_seconds)

    def _initial(self, previous, content, dims):
        params, engine = self.params, self.engine
        if previous is not None:
            # Coarse-to-fine: the last scale's result, upsampled, is the next scale's start.
            # Upsampling loses the detail the smaller scale could not hold; the photo's own detail
            # at this scale (what its downsampled copy lacks) goes back in, so the finer scale
            # spends its iterations on texture rather than on redrawing edges. Measured at 256 and
            # 512 px: closer to the photo and to the style at once than the plain upsampled start.
            small = (previous.shape[-1], previous.shape[-2])
            x = optim.resize(previous, dims) + content - optim.resize(optim.resize(content, small), dims)
        elif params.init == "noise":
            x = engine.normalise(torch.rand(content.shape, generator=self.generator).to(engine.device))
        elif params.init == "image":
            x = engine.to_tensor(self.init_image, dims)
        else:
            x = content.clone()
        return x.detach().contiguous().requires_grad_(True)

    def _report(self, level: int, it: int, record: dict, current: Callable[[], torch.Tensor]) -> None:
        params = self.params
        planned = self.schedule[level].iterations
        losses = None
        if it % params.log_every == 0 or it == 1 or it == planned:
            losses = self._losses(record, level, it)
            self.trace.append(losses)
            self.last = losses
            if not math.isfinite(losses["total"]):
                raise ParameterError("loss", f"diverged to {losses['total']} at step {self.done}; "
                                             "lower the learning rate or the style weight")
        if self.progress:
            total = sum(s.iterations for s in self.schedule)
            elapsed = self.clock() - self.start
            if params.budget_seconds:
                # The plan is re-made from measured costs as the run goes, so its iteration count
                # moves; the clock does not: the share of the budget spent is the steady measure.
                last = level + 1 == len(self.schedule) and it == planned
                fraction = 1.0 if last else min(elapsed / params.budget_seconds, 0.99)
            else:
                work = sum(s.iterations * s.pixels for s in self.schedule)
                fraction = (sum(s.iterations * s.pixels for s in self.schedule[:level])
                            + it * self.schedule[level].pixels) / work
            self.progress(Progress(level, len(self.schedule), it, planned, self.done, total, elapsed, losses,
                                   snapshot=lambda: self.engine.to_image(current()), fraction=fraction,
                                   estimated=bool(params.budget_seconds)))

    def _losses(self, record: dict, level: int, it: int) -> dict:
        terms = record["terms"]
        return {
            "level": level, "step": self.done, "iteration": it,
            "content": terms["content"].item(), "style": terms["style"].item(),
            "style_layers": {k: self.params.style_weight * v.item() for k, v in record["per_layer"].items()},
            "tv": terms["tv"].item(), "total": record["total"].item(),
            "elapsed": round(self.clock() - self.start, 4),
        }

    def final_losses(self, image: torch.Tensor) -> dict:
        """The losses of the image the run returns: with averaging that is not the last iterate,
        so it is scored once more (a forward pass, no backward)."""
        if not self.decay:
            return self.last
        with torch.no_grad():
            total, terms, per_layer = self.objective(image)
        entry = self._losses({"terms": terms, "per_layer": per_layer, "total": total},
                             len(self.schedule) - 1, self.ran[-1]["iterations"])
        entry["averaged"] = True
        self.trace.append(entry)
        return entry
