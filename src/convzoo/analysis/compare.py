"""``convzoo compare RUN_DIR...``: runs side by side (model, data, epochs, parameters, GMACs per
image at the run's input size, top-1/top-5 accuracy, training time) and a scatter plot of top-1
accuracy against multiply-adds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .._io import atomic_write, read_json
from ..errors import ConvzooError


def run_row(run_dir: str | Path) -> dict[str, Any]:
    """One run's figures (from final.json and :func:`~convzoo.engine.loaded.load_trained`: the
    model, its arguments and the side it was trained at)."""
    from ..engine.loaded import load_trained
    from .summary import summarize

    run_dir = Path(run_dir)
    final_path = run_dir / "final.json"
    if not final_path.is_file():
        raise ConvzooError(f"run directory {run_dir} has no final.json (unfinished run?)")
    final = read_json(final_path, what="run results")
    loaded = load_trained(run_dir)
    name, args, data = loaded.name, loaded.model_args, loaded.data or final.get("data")
    size, chans = loaded.side, loaded.in_chans
    s = summarize(name, (chans, size, size), **args)
    return {
        "run": str(run_dir), "model": name, "data": data, "epochs": final.get("epochs"),
        "params": s.params, "gmacs": s.macs / 1e9, "input": f"{chans}x{size}x{size}",
        "top1_acc": final.get("top1_acc"), "top5_acc": final.get("top5_acc"),
        "train_time_s": final.get("train_time_s"),
    }


def compare_runs(run_dirs: list[str | Path], plot: str | Path | None = None
                 ) -> list[dict[str, Any]]:
    """Rows of :func:`run_row`, and the accuracy-vs-compute scatter written to ``plot``."""
    if not run_dirs:
        raise ConvzooError("compare needs at least one run directory")
    rows = [run_row(d) for d in run_dirs]
    if plot is not None:
        plot_accuracy_vs_macs(
            [(Path(r["run"]).name, r["gmacs"], r["top1_acc"]) for r in rows], plot,
            title="top-1 accuracy vs multiply-adds", ylabel="test top-1 accuracy (%)")
    return rows


def plot_accuracy_vs_macs(points: list[tuple[str, float, float | None]], path: str | Path, *,
                          title: str, ylabel: str, logx: bool = True,
                          sizes: list[float] | None = None) -> None:
    """Scatter of (label, GMACs, accuracy in [0, 1]) with each point labelled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = [(lab, x, y) for lab, x, y in points if y is not None]
    fig, ax = plt.subplots(figsize=(8, 5.5))
    for i, (label, x, y) in enumerate(pts):
        s = sizes[i] if sizes else 40
        ax.scatter([x], [100 * y], s=s, alpha=0.7)
        ax.annotate(label, (x, 100 * y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    if logx and pts and min(p[1] for p in pts) > 0:
        ax.set_xscale("log")
    ax.set(xlabel="multiply-adds per image (G)", ylabel=ylabel, title=title)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)


def format_compare(rows: list[dict[str, Any]]) -> str:
    head = (f"{'run':<32} {'model':<16} {'data':<10} {'epochs':>6} {'params':>12} {'GMACs':>9} "
            f"{'top-1 %':>8} {'top-5 %':>8} {'train s':>8}")
    lines = [head, "-" * len(head)]

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:.2f}"

    for r in rows:
        run = Path(r["run"]).name[-32:]
        t = "-" if r["train_time_s"] is None else f"{r['train_time_s']:.0f}"
        lines.append(f"{run:<32} {r['model']:<16} {str(r['data']):<10} {str(r['epochs']):>6} "
                     f"{r['params']:>12,} {r['gmacs']:>9.4f} {pct(r['top1_acc']):>8} "
                     f"{pct(r['top5_acc']):>8} {t:>8}")
    return "\n".join(lines)
