"""`nstd stylize`: one content image, one or more styles, one output and its loss log."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from nstd.core import logs
from nstd.core.bars import percent_bar
from nstd.core.images import load_image, output_format
from nstd.engine import Engine, EngineOptions, Progress, StyleImage, TransferParams, TransferResult
from nstd.outbox.files import loss_log, write_result


@dataclass(frozen=True)
class StyleArg:
    path: Path
    weight: float = 1.0

    @classmethod
    def parse(cls, text: str) -> "StyleArg":
        """PATH or PATH:WEIGHT; a colon not followed by a number is part of the path."""
        head, sep, tail = text.rpartition(":")
        if sep:
            try:
                return cls(Path(head), float(tail))
            except ValueError:
                pass
        return cls(Path(text))


class TerminalProgress:
    """A tqdm bar on a terminal, in percent of the work (the pyramid's iterations differ in cost),
    with the loss and the scale; log lines elsewhere."""

    def __init__(self, label: str, every: int = 50):
        self.label = label
        self.every = every
        self.bar = None
        self.log = logs.get("stylize")
        self.tty = sys.stderr.isatty()

    def __call__(self, p: Progress) -> None:
        if self.tty:
            if self.bar is None:
                self.bar = percent_bar(self.label)
            self.bar.update(100 * p.fraction - self.bar.n)
            if p.losses:
                self.bar.set_postfix(loss=f"{p.losses['total']:.4g}", scale=f"{p.level + 1}/{p.levels}")
        elif p.done % self.every == 0 or p.done == p.total:
            self.log.info("progress", done=p.done, total=p.total, percent=round(100 * p.fraction, 1),
                          scale=f"{p.level + 1}/{p.levels}", it_per_s=round(p.iterations_per_second, 3),
                          loss=p.losses["total"] if p.losses else None)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def stylize(content: Path, styles: list[StyleArg], output: Path, params: TransferParams,
            options: EngineOptions, init_image: Optional[Path] = None) -> tuple[Path, Path, TransferResult]:
    output_format(output)  # refuse a bad extension before minutes of work
    content_img = load_image(content)
    style_imgs = [StyleImage(load_image(s.path), s.weight, key=str(s.path)) for s in styles]
    init = load_image(init_image) if init_image else None
    if init is not None and params.init != "image":
        params = params.replace(init="image")
    engine = Engine(options)
    progress = TerminalProgress(output.name)
    try:
        result = engine.run(content_img, style_imgs, params, init_image=init, progress=progress)
    finally:
        progress.close()
    log = loss_log(result, content=str(content),
                   style_files=[{"path": str(s.path), "weight": s.weight} for s in styles],
                   init_image=str(init_image) if init_image else None)
    image_path, log_path = write_result(result.image, log, output)
    return image_path, log_path, result

