"""Training curves as a PNG (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .._io import atomic_write


def plot_curves(rows: list[dict[str, Any]], path: str | Path, *, title: str = "") -> None:
    """Loss (left) and top-1 error (right) against epoch, train and test."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in rows]
    fig, (ax_loss, ax_err) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, [r["train_loss"] for r in rows], "o-", label="train")
    ax_loss.plot(epochs, [r["test_loss"] for r in rows], "s-", label="test")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    ax_err.plot(epochs, [100 * (1 - r["train_acc"]) for r in rows], "o-", label="train top-1")
    ax_err.plot(epochs, [100 * r["test_top1_err"] for r in rows], "s-", label="test top-1")
    ax_err.plot(epochs, [100 * r["test_top5_err"] for r in rows], "^--", label="test top-5")
    ax_err.set(xlabel="epoch", ylabel="error (%)", title="error")
    for ax in (ax_loss, ax_err):
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)
