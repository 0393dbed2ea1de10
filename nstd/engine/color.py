"""Colour preservation (Gatys et al., "Preserving Color in Neural Artistic Style Transfer", 2016)."""

from __future__ import annotations

import torch
from PIL import Image


def keep_content_chroma(stylized: Image.Image, content: Image.Image) -> Image.Image:
    """Luminance-only transfer: the result's Y channel with the content's Cb and Cr."""
    y, _, _ = stylized.convert("YCbCr").split()
    _, cb, cr = content.resize(stylized.size, Image.Resampling.BICUBIC).convert("YCbCr").split()
    return Image.merge("YCbCr", (y, cb, cr)).convert("RGB")


def _sqrtm(cov: torch.Tensor) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh(cov)
    return vecs @ torch.diag(vals.clamp_min(1e-8).sqrt()) @ vecs.T


def match_colors(style: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Recolour `style` (1x3xHxW, 0..1) so its pixel mean and covariance equal the content's."""
    def stats(img):
        px = img.reshape(3, -1).double()
        mu = px.mean(1, keepdim=True)
        centred = px - mu
        return px, mu, centred @ centred.T / px.shape[1] + 1e-5 * torch.eye(3, dtype=px.dtype)

    s_px, s_mu, s_cov = stats(style)
    _, c_mu, c_cov = stats(content)
    transform = _sqrtm(c_cov) @ torch.linalg.inv(_sqrtm(s_cov))
    out = transform @ (s_px - s_mu) + c_mu
    return out.reshape(style.shape).to(style.dtype).clamp(0, 1)
