"""The loss-curve picture written beside every loss log (matplotlib, no display needed)."""

from __future__ import annotations

import io
from pathlib import Path

from .files import atomic_write_bytes

CURVES = (("total", "black"), ("content", "tab:blue"), ("style", "tab:red"), ("tv", "tab:green"))


def plot_path_for(image_path: Path) -> Path:
    return image_path.with_suffix(".loss.png")


def render(trace: list[dict], title: str = "") -> bytes:
    import matplotlib
    matplotlib.use("Agg")  # never look for a display: the worker runs headless
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 3.2), dpi=100)
    ax = fig.add_subplot()
    steps = [t["step"] for t in trace]
    for key, colour in CURVES:
        values = [t[key] for t in trace]
        if any(v > 0 for v in values):
            # Zeros (the content loss at a content start) have no place on a log axis: gaps.
            ax.plot(steps, [v if v > 0 else float("nan") for v in values], label=key, color=colour,
                    linewidth=2 if key == "total" else 1.2)
    ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("weighted loss")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def write_loss_plot(trace: list[dict], image_path: Path, title: str = "") -> Path:
    path = plot_path_for(image_path)
    atomic_write_bytes(path, render(trace, title))
    return path
