"""The neural style transfer engine: tensors and PIL images in, an image and a loss trace out.

It imports nothing else from nstd and knows nothing of folders, queues, YAML or logging setup.
"""

from .errors import DeviceError, EngineError, ParameterError, WeightsError
from .params import PRESETS, EngineOptions, TransferParams, params_from
from .transfer import Engine, Progress, StyleImage, TransferResult, select_device
from .vgg import load_vgg19

__all__ = [
    "DeviceError", "Engine", "EngineError", "EngineOptions", "PRESETS", "ParameterError", "Progress",
    "StyleImage", "TransferParams", "TransferResult", "WeightsError", "load_vgg19", "params_from",
    "select_device",
]
