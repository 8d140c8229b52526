"""Training curves as a PNG (matplotlib, headless): a run's curves.png, written when it ends
(:func:`~convzoo.engine.rundir.finish_run`), and the figures report and compare draw from its
metrics (:meth:`~convzoo.engine.rundir.RunDir.metrics`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .._io import atomic_write


def curves_figure(rows: list[dict[str, Any]], *, title: str = ""):
    """Loss, top-1/top-5 error and the learning rate against epoch (one row of metrics per
    epoch, as in metrics.jsonl / metrics.csv). The learning-rate panel is left out when no row
    records one. Epoch ticks are whole numbers."""
    from .._plotting import pyplot

    plt = pyplot()

    epochs = [r["epoch"] for r in rows]
    lrs = [r.get("lr") for r in rows]
    has_lr = any(v is not None for v in lrs)
    fig, axes = plt.subplots(1, 3 if has_lr else 2, figsize=(14 if has_lr else 10, 4))
    ax_loss, ax_err = axes[0], axes[1]
    ax_loss.plot(epochs, [r["train_loss"] for r in rows], "o-", label="train")
    ax_loss.plot(epochs, [r["test_loss"] for r in rows], "s-", label="test")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    ax_err.plot(epochs, [100 * (1 - r["train_acc"]) for r in rows], "o-", label="train top-1")
    if any(r.get("train_eval_acc") is not None for r in rows):  # --eval-train N
        ax_err.plot(epochs, [None if r.get("train_eval_acc") is None else
                             100 * (1 - r["train_eval_acc"]) for r in rows], "o:",
                    label="train top-1, eval mode")
    ax_err.plot(epochs, [100 * r["test_top1_err"] for r in rows], "s-", label="test top-1")
    ax_err.plot(epochs, [100 * r["test_top5_err"] for r in rows], "^--", label="test top-5")
    ax_err.set(xlabel="epoch", ylabel="error (%)", title="error")
    for ax in (ax_loss, ax_err):
        ax.legend()
    if has_lr:
        ax_lr = axes[2]
        ax_lr.plot(epochs, lrs, "o-", color="#555")
        ax_lr.set(xlabel="epoch", ylabel="learning rate (end of epoch)", title="learning rate")
    for ax in axes:
        ax.grid(alpha=0.3)
        epoch_ticks(ax, epochs)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def epoch_ticks(ax, epochs: list[float]) -> None:
    """Whole-number epoch ticks: at each epoch when there are few (matplotlib's integer locator
    falls back to 0.95, 0.975, ... for a single epoch), else integers chosen by matplotlib."""
    from matplotlib.ticker import MaxNLocator

    whole = sorted({int(e) for e in epochs if e is not None and float(e).is_integer()})
    if 0 < len(whole) <= 12:
        ax.set_xticks(whole)
        if len(whole) == 1:
            ax.set_xlim(whole[0] - 0.5, whole[0] + 0.5)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def plot_curves(rows: list[dict[str, Any]], path: str | Path, *, title: str = "") -> None:
    """:func:`curves_figure` written to ``path`` as a PNG."""
    import matplotlib.pyplot as plt

    fig = curves_figure(rows, title=title)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)
