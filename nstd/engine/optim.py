"""The optimiser of one scale, the running average of its iterates, and what carries between scales."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from .params import TransferParams


def make_optimiser(x: torch.Tensor, params: TransferParams, history: int = 100) -> torch.optim.Optimizer:
    if params.optimizer == "adam":
        return torch.optim.Adam([x], lr=params.learning_rate or 0.05)
    # One L-BFGS iteration per step keeps "iteration" equal to one forward+backward, as in
    # the benchmark's floor; the curvature history persists across steps (not across scales:
    # its vectors are the old size). A scale painted under a memory cap may keep less (memory.py).
    return torch.optim.LBFGS([x], lr=params.learning_rate or 1.0, max_iter=1, history_size=history)


def resize(t: torch.Tensor, dims: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(t, size=(dims[1], dims[0]), mode="bicubic", align_corners=False)


def carry_adam_state(old: torch.optim.Optimizer, new: torch.optim.Optimizer,
                     dims: tuple[int, int]) -> None:
    """Start the next scale's Adam with the last scale's moment estimates, resized, so it does not
    take its first steps blind (crowsonkb/style-transfer-pytorch does the same)."""
    (old_x,), (new_x,) = old.param_groups[0]["params"], new.param_groups[0]["params"]
    state = old.state.get(old_x)
    if not state:
        return
    new.state[new_x] = {
        "step": state["step"].clone(),
        "exp_avg": resize(state["exp_avg"], dims),
        # Bicubic overshoot could make a second moment negative, and its square root NaN.
        "exp_avg_sq": F.interpolate(state["exp_avg_sq"], size=(dims[1], dims[0]), mode="bilinear",
                                    align_corners=False),
    }


class IterateAverage:
    """An exponential moving average of the image over one scale's iterations, bias-corrected
    (Adam's correction) so its first values are not pulled towards zero. Averaging smooths the
    jitter of a stochastic-looking optimiser path at no extra forward passes."""

    def __init__(self, decay: float):
        self.decay = decay
        self.steps = 0
        self._sum: Optional[torch.Tensor] = None

    def update(self, x: torch.Tensor) -> None:
        with torch.no_grad():
            if self._sum is None:
                self._sum = torch.zeros_like(x)
            self._sum.mul_(self.decay).add_(x.detach(), alpha=1 - self.decay)
            self.steps += 1

    def value(self) -> torch.Tensor:
        assert self._sum is not None, "no iterate averaged yet"
        return self._sum / (1 - self.decay ** self.steps)
