"""Rate-distortion plots, drawn with matplotlib's Agg canvas (no pyplot global state)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from matplotlib import rcParams
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from neuralcodec.errors import InputError

STYLES = (("-", "o"), ("--", "s"), (":", "^"))
"""(line style, marker) of the first series, of those after the colour cycle's first round, and so on:
series whose colours repeat stay apart."""


def _draw(
    curves: Mapping[str, Sequence[tuple[float, float]]], xlabel: str, ylabel: str, title: str,
    log_x: bool = False, reference: tuple[str, float] | None = None,
) -> Figure:
    """A figure with one line-and-markers series per codec (no two alike: see ``STYLES``), points sorted
    by rate, and an optional dashed horizontal reference line ``(label, value)``."""
    figure = Figure(figsize=(6.4, 4.8), dpi=120)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    colours = len(rcParams["axes.prop_cycle"].by_key()["color"])
    for index, (name, points) in enumerate(curves.items()):
        if len(points) == 0:
            raise InputError(f"RD curve {name!r} has no points")
        rates, qualities = zip(*sorted(points))
        style = STYLES[(index // colours) % len(STYLES)]  # once the colours repeat, the line and marker change
        axes.plot(rates, qualities, linestyle=style[0], marker=style[1], markersize=4, label=name)
    if reference is not None:
        axes.axhline(reference[1], color="black", linestyle="--", linewidth=1, label=reference[0])
    if log_x:  # ticks at 1, 2, 5 x powers of ten, labelled as plain numbers (0.05, 0.1, 0.2...)
        axes.set_xscale("log")
        axes.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        axes.xaxis.set_minor_formatter(NullFormatter())
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(True, alpha=0.4)
    axes.legend(fontsize="small" if len(curves) > 6 else None)
    figure.tight_layout()
    return figure


def plot_rd_curves(
    curves: Mapping[str, Sequence[tuple[float, float]]],
    path: str | os.PathLike[str],
    xlabel: str = "bits per pixel",
    ylabel: str = "PSNR (dB)",
    title: str = "Rate-distortion",
    log_x: bool = False,
    reference: tuple[str, float] | None = None,
) -> Path:
    """Plot ``{codec: [(rate, quality), ...]}`` into a PNG at ``path`` and return that path; ``log_x``
    puts the x axis on a log scale and ``reference`` adds a dashed ``(label, value)`` line.

    The PNG is written beside ``path`` first and renamed over it, so readers never see half a file.
    """
    if not curves:
        raise InputError("no RD curves to plot")
    figure = _draw(curves, xlabel, ylabel, title, log_x, reference)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        figure.savefig(partial, format="png")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target
