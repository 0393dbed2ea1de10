"""Which precision the network runs in, chosen for the device.

`mixed_precision: auto` runs VGG-19 in bfloat16 where the device computes it natively: a CUDA GPU
that supports it, a CPU with AVX512_BF16 or AMX (measured on an AMD EPYC with AVX512_BF16: 0.57-0.63x
float32's time at 256-512 px, the judge's distances within 1 %). Elsewhere a CPU emulates bfloat16
through float32 and is slower than float32 itself, so `auto` keeps float32 there. `on` forces
bfloat16 (the GPU's path where there is no GPU: the tests); `off` float32 everywhere. Only the
network changes: Gram matrices, losses, the image and the optimiser's state stay float32.
"""

from __future__ import annotations

from typing import Literal

import torch

Precision = Literal["bfloat16", "float32"]
MODES = ("auto", "on", "off")


def cpu_computes_bfloat16() -> bool:
    """AVX512_BF16 or AMX: the instructions oneDNN's bfloat16 convolutions run on."""
    cpu = torch.cpu
    checks = [getattr(cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(check() for check in checks if check is not None)


def network_precision(mode: str, device: torch.device) -> Precision:
    if mode == "off":
        return "float32"
    if mode == "on":
        return "bfloat16"
    if device.type == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported(including_emulation=False) else "float32"
    if device.type == "cpu":
        return "bfloat16" if cpu_computes_bfloat16() else "float32"
    return "float32"  # mps and others: not measured
