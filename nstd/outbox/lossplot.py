"""The loss-curve picture written beside every loss log (matplotlib, no display needed)."""

from __future__ import annotations

import io
from pathlib import Path

from .files import atomic_write_bytes

CURVES = (("total", "black"), ("content", "tab:blue"), ("style", "tab:red"), ("tv", "tab:green"))


def plot_path_for(image_path: Path) -> Path:
    return image_path.with_suffix(".loss.png")


def scale_starts(trace: list[dict]) -> list[tuple[int, int]]:
    """(step, level) where each scale after the first begins: the curves jump there, by design
    (a larger image has more texture to match), and the plot says so."""
    starts, level = [], None
    for t in trace:
        if t.get("averaged"):
            continue
        if level is not None and t.get("level", level) != level:
            starts.append((t["step"], t["level"]))
        level = t.get("level", level)
    return starts


def render(trace: list[dict], title: str = "", sizes: tuple[str, ...] = ()) -> bytes:
    """`sizes`: each scale's size as people read it ("181x136"), to label the scale changes."""
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
    for step, level in scale_starts(trace):
        ax.axvline(step, color="grey", linestyle="--", linewidth=0.8)
        label = sizes[level] if level < len(sizes) else f"scale {level + 1}"
        ax.annotate(label, (step, 1), xycoords=("data", "axes fraction"), xytext=(3, -10),
                    textcoords="offset points", fontsize=7, color="grey")
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


def write_loss_plot(trace: list[dict], image_path: Path, title: str = "", sizes: tuple[str, ...] = ()) -> Path:
    path = plot_path_for(image_path)
    atomic_write_bytes(path, render(trace, title, sizes))
    return path
