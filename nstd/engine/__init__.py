"""The neural style transfer engine: tensors and PIL images in, an image and a loss trace out.

It imports nothing else from nstd and knows nothing of folders, queues, YAML or logging setup.
The torch-backed names load on first use, so that the daemon, which only needs the parameter
types, never imports torch: the GPU work and its memory belong to the worker process alone.
"""

import os
from importlib import import_module

# OpenMP threads that spin while they wait starve on a busy machine. Measured on this project's
# 2-core CPU beside two CPU-burning processes: 1621 ms per iteration at 48 px with the default wait
# policy, 124 ms with PASSIVE; idle, PASSIVE costs 2 % at 256 px (565 vs 578 ms) and 8 % at 48 px.
# A daemon shares its machine, so passive is the default; an OMP_WAIT_POLICY set by the user wins.
# It must be in the environment before torch loads its OpenMP runtime, which happens below.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .errors import DeviceError, EngineError, ParameterError, WeightsError
from .params import PRESETS, EngineOptions, TransferParams, params_from

_LAZY = {"Engine": ".transfer", "Progress": ".records", "StyleImage": ".records",
         "TransferResult": ".records", "select_device": ".transfer", "load_vgg19": ".vgg"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DeviceError", "Engine", "EngineError", "EngineOptions", "PRESETS", "ParameterError", "Progress",
    "StyleImage", "TransferParams", "TransferResult", "WeightsError", "load_vgg19", "params_from",
    "select_device",
]
