"""The three terms of Gatys et al.'s objective, each independent of the image size.

Deviations from the paper, on purpose:
* The Gram matrix is divided by the number of positions (H*W), and each content and style layer's
  squared error is divided by its target's mean square: every term starts near 1 whatever the image
  size, the layer's depth or the weights' scale (Caffe activations run to the thousands, torchvision's
  to tens). The paper's sums span ten orders of magnitude across layers, which drowns all but one
  layer under equal weights and throws L-BFGS's first steps off.
* Total variation is the mean squared difference of neighbouring pixels (0..1 RGB): smooth, which
  L-BFGS prefers to the L1 form.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def gram(features: torch.Tensor) -> torch.Tensor:
    """Channel co-activation matrix, averaged over positions; computed in float32 always."""
    b, c, h, w = features.shape
    return _SymmetricGram.apply(features.reshape(b, c, h * w).float(), h * w)


class _SymmetricGram(torch.autograd.Function):
    """F F^T / n, whose backward is one matrix product: G is symmetric, so dL/dF = (dL/dG +
    dL/dG^T) F / n. Autograd, seeing F used twice, would multiply twice; at relu1_1 that product
    is 5 % of an iteration (bench/iteration_cost.py)."""

    @staticmethod
    def forward(ctx, flat: torch.Tensor, n: int) -> torch.Tensor:
        ctx.save_for_backward(flat)
        ctx.n = n
        return torch.bmm(flat, flat.transpose(1, 2)) / n

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (flat,) = ctx.saved_tensors
        return torch.bmm(grad + grad.transpose(1, 2), flat) / ctx.n, None


class Target:
    """A layer's target and the scale its squared error is divided by."""

    def __init__(self, value: torch.Tensor):
        self.value = value.detach().float()
        self.scale = self.value.pow(2).mean().clamp_min(1e-8)

    def loss(self, current: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(current.float(), self.value) / self.scale


def content_loss(features: dict[str, torch.Tensor], targets: dict[str, Target]) -> torch.Tensor:
    return sum(t.loss(features[k]) for k, t in targets.items())


def style_layer_losses(features: dict[str, torch.Tensor], target_grams: dict[str, Target],
                       layer_weights: dict[str, float]) -> dict[str, torch.Tensor]:
    return {k: layer_weights[k] * t.loss(gram(features[k])) for k, t in target_grams.items()}


def total_variation(rgb01: torch.Tensor) -> torch.Tensor:
    dx = rgb01[..., :, 1:] - rgb01[..., :, :-1]
    dy = rgb01[..., 1:, :] - rgb01[..., :-1, :]
    return dx.pow(2).mean() + dy.pow(2).mean()
