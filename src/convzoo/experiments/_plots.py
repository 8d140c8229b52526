"""Plot helpers shared by the experiments (matplotlib, headless, small PNGs for docs/)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._io import atomic_write


def figure(ncols: int = 1, *, width: float = 5.0, height: float = 3.6):
    from .._plotting import pyplot

    plt = pyplot()

    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=False)
    return fig, list(axes[0])


def band(ax: Any, xs: Sequence[float], curves: Sequence[Sequence[float]], *, label: str,
         color: str | None = None, style: str = "-") -> None:
    """Mean over seeds as a line, min..max over seeds shaded; curves cut to the shortest."""
    curves = [list(c) for c in curves if len(c)]
    if not curves:
        return
    n = min(len(xs), *(len(c) for c in curves))
    xs = list(xs)[:n]
    cols = [[c[i] for c in curves] for i in range(n)]
    mean = [sum(v) / len(v) for v in cols]
    (line,) = ax.plot(xs, mean, style, label=label, color=color, lw=1.5)
    if len(curves) > 1:
        ax.fill_between(xs, [min(v) for v in cols], [max(v) for v in cols], alpha=0.2,
                        color=line.get_color(), lw=0)


def save(fig: Any, path: Path, *, title: str = "") -> None:
    import matplotlib.pyplot as plt

    for ax in fig.axes:
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=80))
    plt.close(fig)


def paper_mark(ax: Any, value: float, label: str, *, axis: str = "y",
               color: str = "tab:green") -> None:
    """The paper's number on the plot: a dotted line at ``value`` (horizontal for ``axis="y"``,
    vertical for ``"x"``) labelled in the legend as the paper's."""
    draw = ax.axhline if axis == "y" else ax.axvline
    draw(value, color=color, ls="-.", lw=1.2, label=f"paper: {label}")
