"""Painting in tiles (issue 24): the same loss and gradient as the whole image, in bounded memory."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nstd.engine import EngineOptions, ParameterError, StyleImage, TransferParams
from nstd.engine import memory
from nstd.engine.losses import gram
from nstd.engine.tiling import Geometry, tiled_grams, tiles

from conftest import make_content, make_style

FIXED = TransferParams(style_weight=20.0, size=160, scales=1, iterations=4)


def test_the_margin_covers_vggs_receptive_field_on_the_deepest_layers_grid():
    # relu4_2 sees 84 pixels (a radius of 42) at a stride of 8; relu5_1 sees 132 at 16.
    assert Geometry.of(("relu1_1", "relu4_2")) == Geometry(stride=8, margin=48)
    assert Geometry.of(("relu5_1",)) == Geometry(stride=16, margin=80)
    assert Geometry.of(("relu1_1",)) == Geometry(stride=1, margin=2)


def test_tile_cores_cover_every_pixel_once_whatever_the_offset():
    geometry = Geometry(stride=8, margin=48)
    for offset in [(0, 0), (8, 24), (32, 0)]:
        owned = torch.zeros(101, 150, dtype=torch.int32)
        for tile in tiles((150, 101), 40, geometry, offset):
            x0, y0, x1, y1 = tile.core
            owned[y0:y1, x0:x1] += 1
            assert tile.box[0] == max(0, x0 - 48) and tile.box[3] == min(101, y1 + 48)
            assert x0 % 8 == 0 and y0 % 8 == 0
        assert bool((owned == 1).all())


def _objectives(engine, cap_core: int):
    content, style = make_content((150, 101)), make_style((96, 96))
    dims = (150, 101)
    x0 = engine.to_tensor(content, dims)
    styles = [StyleImage(style)]
    whole = engine.objective(x0, styles, dims, FIXED)
    tiled = engine.objective(x0, styles, dims, FIXED, memory.MemoryPlan(core=cap_core, history=10))
    return x0, whole, tiled


def test_the_tiled_gradient_and_loss_are_the_whole_images(engine):
    """Tiles far smaller than the image (cores of 40 px, each read with its 48 px margin), on an
    image whose sides are not multiples of the stride: the loss and every pixel's gradient equal
    the untiled ones up to float rounding."""
    x0, whole, tiled = _objectives(engine, 40)
    torch.manual_seed(0)
    x = (x0 + 0.3 * torch.randn_like(x0)).requires_grad_(True)  # not the photo: a content loss to match
    results = []
    for objective in (whole, tiled):
        x.grad = None
        total, terms, per_layer = objective(x)
        total.backward()
        results.append((total.item(), {k: v.item() for k, v in terms.items()}, x.grad.clone()))
    (t_whole, terms_whole, g_whole), (t_tiled, terms_tiled, g_tiled) = results
    assert t_tiled == pytest.approx(t_whole, rel=1e-4)
    for k in terms_whole:
        assert terms_tiled[k] == pytest.approx(terms_whole[k], rel=1e-4), k
    assert terms_whole["content"] > 0.01 and terms_whole["style"] > 0.01
    assert ((g_tiled - g_whole).norm() / g_whole.norm()).item() < 1e-4
    # Each call moves the tiles; the value stays.
    assert tiled(x)[0].item() == pytest.approx(t_tiled, rel=1e-4)


def test_a_margin_short_of_the_receptive_field_is_caught(engine, monkeypatch):
    """What makes the test above able to fail: 16 px less margin than relu4_2's receptive field
    needs, and the tiled gradient is no longer the whole image's (6e-3 off, where the right margin
    is 6e-7 off)."""
    monkeypatch.setattr(Geometry, "of", classmethod(lambda cls, layers: cls(stride=8, margin=32)))
    x0, whole, tiled = _objectives(engine, 40)
    torch.manual_seed(0)
    x = (x0 + 0.3 * torch.randn_like(x0)).requires_grad_(True)
    grads = []
    for objective in (whole, tiled):
        x.grad = None
        objective(x)[0].backward()
        grads.append(x.grad.clone())
    assert ((grads[1] - grads[0]).norm() / grads[0].norm()).item() > 1e-3


def test_a_style_images_grams_from_tiles_are_the_whole_images(engine):
    x = engine.to_tensor(make_style((130, 90)), (130, 90))
    layers = TransferParams().style_layers
    whole = {k: gram(v) for k, v in engine.features(x, layers, "max").items()}
    tiled = tiled_grams(lambda t, names: engine.features(t, names, "max"), x, layers, 32)
    for k in layers:  # a margin 16 px short already misses relu4_1 by 6e-4
        assert ((tiled[k] - whole[k]).norm() / whole[k].norm()).item() < 1e-5, k


def test_the_memory_plan_tiles_only_what_does_not_fit():
    geometry = Geometry(stride=8, margin=48)
    args = (geometry.margin, geometry.stride, 8.0)
    assert memory.plan((4096, 3072), None, *args) == memory.MemoryPlan(core=None, history=100)
    assert memory.plan((512, 384), 6, *args).tiled is False
    big = memory.plan((4096, 3072), 6, *args)
    assert big.tiled and big.core % 8 == 0 and memory.MIN_HISTORY <= big.history < 100
    pixels = 4096 * 3072
    used = (memory.IMAGE_BUFFERS + 2 * big.history) * pixels * memory.IMAGE_BYTES + pixels * 8 * 4 \
        + memory.network_bytes((big.core + 2 * geometry.margin) ** 2)
    assert used <= 6 * memory.GB * memory.HEADROOM
    with pytest.raises(ParameterError, match="max_memory_gb.*needs at least"):
        memory.plan((8192, 8192), 1, *args)
    assert memory.plan((5600, 4200), 6, *args).history == memory.MIN_HISTORY  # the history gives way first


def test_a_scale_of_few_iterations_spends_no_memory_on_history_it_cannot_fill():
    """L-BFGS adds one step a iteration: 12 iterations at 2048 px hold 12 steps, not the 47 that
    would fit, and the tiles take that room (fewer tiles, fewer margins)."""
    args = (48, 8, 8.0)
    unknown, twelve = memory.plan((2048, 1536), 6, *args), memory.plan((2048, 1536), 6, *args, iterations=12)
    assert unknown.history > 12 and twelve.history == 12 and twelve.core > unknown.core
    assert memory.plan((2048, 1536), 6, *args, iterations=1).history == memory.MIN_HISTORY
    # A scale that fits whole with the full history keeps it (a budget may give it more iterations).
    assert memory.plan((512, 384), 6, *args, iterations=5) == memory.MemoryPlan(core=None, history=100)
    # One that fits whole only with the short history is painted whole, not in tiles.
    pixels = 1024 * 768
    cap = ((memory.IMAGE_BUFFERS + 2 * 20) * pixels * memory.IMAGE_BYTES + pixels * 8 * 4
           + memory.network_bytes(pixels)) / memory.HEADROOM / memory.GB
    assert memory.plan((1024, 768), cap, *args).tiled
    assert memory.plan((1024, 768), cap, *args, iterations=20) == memory.MemoryPlan(core=None, history=20)


@pytest.mark.slow
def test_a_run_under_a_small_cap_paints_in_tiles_like_the_whole_image(engine):
    """The engine's own choice: a cap too small for the image untiled paints it in tiles, records
    that in its schedule, and ends where the untiled run ends (the same gradients; L-BFGS's history
    is shorter)."""
    from nstd.engine import Engine
    capped = Engine(EngineOptions(max_memory_gb=0.22, mixed_precision="off"))
    content, style = make_content((224, 160)), make_style((96, 96))
    params = TransferParams(size=224, scales=1, iterations=3, style_weight=20.0, log_every=3)
    tiled = capped.run(content, [StyleImage(style)], params)
    whole = engine.run(content, [StyleImage(style)], params)
    assert "tile_core" in tiled.info["schedule"][-1] and "tile_core" not in whole.info["schedule"][-1]
    assert tiled.final["total"] == pytest.approx(whole.final["total"], rel=0.05)


PEAK = """
import ctypes, gc, json, sys
sys.path.insert(0, "tests")
from conftest import make_content, make_style
from nstd.engine import Engine, EngineOptions, StyleImage, TransferParams

def status(field):
    return next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith(field))

def growth(paint):
    # The high-water mark reset (Linux's clear_refs) after freed memory is handed back: the peak
    # this painting adds to what the process holds, not to a peak some earlier step left.
    gc.collect()
    ctypes.CDLL(None).malloc_trim(0)
    open("/proc/self/clear_refs", "w").write("5")
    before = status("VmRSS:")
    result = paint()
    return status("VmHWM:") - before, result

content, style = make_content((512, 384)), make_style((256, 256))
params = TransferParams(size=512, scales=1, iterations=3, style_weight=20.0)
capped = Engine(EngineOptions(max_memory_gb={cap}, mixed_precision="off"))
whole = Engine(EngineOptions(mixed_precision="off"))
for engine in (capped, whole):  # torch's own start-up and the weights, once each
    engine.run(content, [StyleImage(style)], params.replace(size=32))
tiled, result = growth(lambda: capped.run(content, [StyleImage(style)], params))
untiled, _ = growth(lambda: whole.run(content, [StyleImage(style)], params))
print(json.dumps({{"tiled": tiled, "whole": untiled, "schedule": result.info["schedule"]}}))
"""


@pytest.mark.slow
def test_a_capped_run_stays_under_its_cap_where_the_whole_image_would_not(tmp_path):
    """In a process of its own: a 512x384 painting under a 0.35 GB cap raises the process's
    resident memory by less than the cap; the same painting untiled by more. Measured from the
    memory held just before each painting (not from the process's lifetime peak, which the
    weights' loading sets and which hid a tiled run 1.4x over its cap until glibc was made to hand
    back what each tile frees, memory.release_freed)."""
    import json
    import subprocess
    import sys
    cap = 0.35
    out = subprocess.run([sys.executable, "-c", PEAK.format(cap=cap)], capture_output=True, text=True,
                         timeout=600, cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert "tile_core" in got["schedule"][-1]
    assert 0 < got["tiled"] < cap * memory.GB < got["whole"], got


@pytest.mark.slow
def test_the_daemon_paints_a_photo_at_its_own_size_in_tiles(tmp_path, daemon_with):
    """`size: original` in the YAML, a worker capped below what the photo needs untiled: the result
    has the photo's own size, and its loss log says the scale ran in tiles."""
    import io
    import json
    from PIL import Image
    from conftest import wait_for
    photo = io.BytesIO()
    make_content((200, 150)).save(photo, "PNG")
    config, daemon = daemon_with({"photo.png": photo.getvalue()}, defaults={"size": "original", "iterations": 2},
                                 extra="worker:\n  max_memory_gb: 0.22\n")
    logs = lambda: [p for p in (tmp_path / "outbox").rglob("photo*.json")]  # noqa: E731
    wait_for(logs, 300, what="the photo's loss log in the outbox")
    log = json.loads(logs()[0].read_text())
    assert log["output_size"] == [200, 150] and "tile_core" in log["schedule"][-1]
    assert Image.open(logs()[0].with_suffix(".png")).size == (200, 150)


def test_size_original_and_the_cap_are_flags_and_yaml_keys():
    import argparse
    from nstd.config import ParamsModel
    from nstd.core.paramflags import add_param_flags, params_from_args
    parser = argparse.ArgumentParser()
    add_param_flags(parser)
    params, options = params_from_args(parser.parse_args(["--size", "original", "--max-memory-gb", "6"]))
    assert params.size == "original" and options.max_memory_gb == 6
    assert params_from_args(parser.parse_args(["--size", "300"]))[0].size == 300
    with pytest.raises(SystemExit):
        parser.parse_args(["--size", "huge"])
    assert ParamsModel.model_validate({"size": "original"}).size == "original"
    with pytest.raises(ParameterError, match="size"):
        TransferParams(size="huge")
