"""Generated pictures for a first try: landscapes to paint and brush-stroke textures to paint them in.

Made here, not shipped: nothing to download or license, and each is a style a result plainly takes on.
"""

from __future__ import annotations

import math
import random

from PIL import Image, ImageDraw, ImageFilter


def paint_scene(seed: int, size=(256, 192)) -> Image.Image:
    """A simple landscape: sky, sun, hills and houses; enough structure to recognise afterwards."""
    rng = random.Random(seed)
    w, h = size
    img = Image.new("RGB", size)
    draw = ImageDraw.Draw(img)
    top, bottom = (rng.randint(60, 120), rng.randint(120, 180), 230), (230, 220, rng.randint(150, 220))
    for y in range(h):
        t = y / h
        draw.line([(0, y), (w, y)], fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom)))
    sx, sy = rng.randint(30, w - 30), rng.randint(20, h // 3)
    draw.ellipse([sx - 18, sy - 18, sx + 18, sy + 18], fill=(255, 210, 80))
    for k in range(3):
        base = h * (0.55 + 0.12 * k)
        color = (40 + 30 * k, 120 - 20 * k, 50)
        pts = [(x, base - 25 * math.sin(x / w * math.pi * (1 + k) + seed)) for x in range(0, w + 8, 8)]
        draw.polygon(pts + [(w, h), (0, h)], fill=color)
    for _ in range(rng.randint(2, 4)):
        x, y = rng.randint(10, w - 60), rng.randint(int(h * 0.55), h - 50)
        draw.rectangle([x, y, x + 40, y + 35], fill=(rng.randint(150, 250), rng.randint(60, 200), 60))
        draw.polygon([(x - 5, y), (x + 20, y - 20), (x + 45, y)], fill=(150, 40, 30))
        draw.rectangle([x + 15, y + 15, x + 25, y + 35], fill=(70, 40, 20))
    return img


def paint_strokes(seed: int = 7, size=(256, 256)) -> Image.Image:
    """A bold, swirling brush-stroke texture: a style the result plainly takes on."""
    rng = random.Random(seed)
    img = Image.new("RGB", size, (20, 30, 80))
    draw = ImageDraw.Draw(img)
    palette = [(240, 200, 40), (30, 90, 200), (250, 250, 220), (20, 140, 160), (200, 60, 30)]
    for _ in range(400):
        cx, cy = rng.uniform(0, size[0]), rng.uniform(0, size[1])
        r, a0 = rng.uniform(8, 40), rng.uniform(0, 2 * math.pi)
        pts = [(cx + r * math.cos(a0 + t / 8), cy + r * math.sin(a0 + t / 8)) for t in range(12)]
        draw.line(pts, fill=rng.choice(palette), width=rng.randint(2, 6))
    return img.filter(ImageFilter.SMOOTH)


def paint_waves(seed: int = 11, size=(256, 256)) -> Image.Image:
    """Long, dark sea-green swells with white crests: a stormy texture unlike paint_strokes' swirls."""
    rng = random.Random(seed)
    img = Image.new("RGB", size, (25, 45, 55))
    draw = ImageDraw.Draw(img)
    palette = [(30, 80, 90), (60, 110, 115), (200, 210, 200), (15, 30, 40), (110, 140, 130)]
    w, h = size
    for _ in range(160):
        y0, amp = rng.uniform(0, h), rng.uniform(4, 18)
        phase, period = rng.uniform(0, 2 * math.pi), rng.uniform(40, 120)
        pts = [(x, y0 + amp * math.sin(x / period * 2 * math.pi + phase)) for x in range(0, w + 6, 6)]
        draw.line(pts, fill=rng.choice(palette), width=rng.randint(2, 7))
    return img.filter(ImageFilter.SMOOTH)
