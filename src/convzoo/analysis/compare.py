"""``convzoo compare RUN_DIR...``: runs side by side.

A table of the runs (model, data, epochs, parameters, GMACs per image at the run's input size,
top-1/top-5 accuracy, training time), the table of the settings in which their config.json
differ, and two figures written under ``--out``: the runs' training curves overlaid
(``curves.png``: test error, loss, learning rate against epoch) and top-1 accuracy against
multiply-adds with one axis per data set (``accuracy.png``; accuracies on different test sets
are not comparable on one axis).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._io import atomic_write, write_json
from ..engine.curves import epoch_ticks
from ..engine.rundir import RunDir
from ..errors import ConvzooError

# config.json keys that differ between any two runs without saying anything about the training.
_NOT_SETTINGS = ("out", "argv", "resume", "convzoo_version", "input_size_reason", "overwrite")


def run_row(run_dir: str | Path) -> dict[str, Any]:
    """One run's figures (from final.json and :func:`~convzoo.engine.loaded.load_trained`: the
    model, its arguments and the side it was trained at)."""
    return _row_and_config(run_dir)[0]


def _row_and_config(run_dir: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """:func:`run_row` and the run's config.json ({} when damaged: load_trained warns)."""
    from ..engine.loaded import load_trained
    from .summary import summarize

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConvzooError(f"run directory {run_dir} does not exist")
    final = RunDir(run_dir).final()
    loaded = load_trained(run_dir)
    name, args, data = loaded.name, loaded.model_args, loaded.data or final.get("data")
    size, chans = loaded.side, loaded.in_chans
    s = summarize(name, (chans, size, size), **args)
    return {
        "run": str(run_dir), "model": name, "data": data, "epochs": final.get("epochs"),
        "params": s.params, "gmacs": s.macs / 1e9, "input": f"{chans}x{size}x{size}",
        "top1_acc": final.get("top1_acc"), "top5_acc": final.get("top5_acc"),
        "train_time_s": final.get("train_time_s"),
    }, loaded.config


def differing_settings(configs: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """key -> one value per run (None where a run lacks the key), for every config.json key
    whose values are not all equal."""
    keys = dict.fromkeys(k for c in configs for k in c if k not in _NOT_SETTINGS)
    out = {}
    for key in keys:
        values = [c.get(key) for c in configs]
        if any(v != values[0] for v in values[1:]):
            out[key] = values
    return out


def run_labels(run_dirs: list[str | Path]) -> list[str]:
    """Short names of the runs: the folder names, with the parent added where two clash."""
    names = [Path(d).name for d in run_dirs]
    return [f"{Path(d).parent.name}/{n}" if names.count(n) > 1 else n
            for d, n in zip(run_dirs, names, strict=True)]


def default_out(run_dirs: list[str | Path]) -> Path:
    """Beside the runs (never the current folder): ``PARENT_OF_FIRST_RUN/compare``."""
    return Path(run_dirs[0]).resolve().parent / "compare"


@dataclass
class Comparison:
    rows: list[dict[str, Any]]
    labels: list[str]
    settings: dict[str, list[Any]]  # see differing_settings
    out: Path | None = None
    files: list[Path] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"runs": self.rows, "labels": self.labels, "settings": self.settings,
                "files": [str(f) for f in self.files]}


def compare_runs(run_dirs: list[str | Path], out: str | Path | None = None, *,
                 write: bool = True) -> Comparison:
    """Rows of :func:`run_row`, the differing settings, and (``write``) curves.png,
    accuracy.png and compare.json under ``out`` (default :func:`default_out`)."""
    if not run_dirs:
        raise ConvzooError("compare needs at least one run directory")
    rows, configs = map(list, zip(*(_row_and_config(d) for d in run_dirs), strict=True))
    metrics = [RunDir(d).metrics() for d in run_dirs]  # a damaged metrics.csv: before any folder
    labels = run_labels(run_dirs)
    result = Comparison(rows, labels, differing_settings(configs))
    if not write:
        return result
    from ..engine.rundir import refuse_output_in_run

    result.out = Path(out) if out is not None else default_out(run_dirs)
    refuse_output_in_run(result.out, "--out" if out is not None else
                         "the default output folder (give --out)")
    if result.out.exists() and not result.out.is_dir():
        raise ConvzooError(f"--out {result.out} is a file; expected a folder for the figures")
    try:
        result.out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConvzooError(f"--out {result.out}: cannot make the folder ({e.strerror or e})"
                           ) from None
    import matplotlib.pyplot as plt

    figures = {"curves.png": curves_overlay_figure(labels, metrics),
               "accuracy.png": accuracy_figure(labels, rows)}
    for name, fig in figures.items():
        path = result.out / name
        atomic_write(path, lambda tmp, fig=fig: fig.savefig(tmp, format="png", dpi=100))
        plt.close(fig)
        result.files.append(path)
    write_json(result.out / "compare.json", result.to_dict())
    result.files.append(result.out / "compare.json")
    return result


def curves_overlay_figure(labels: list[str], metrics: list[list[dict[str, Any]]]):
    """The runs' curves overlaid, one colour per run: test top-1 error, loss (train solid,
    test dashed) and the learning rate against epoch (whole-number ticks)."""
    from .._plotting import pyplot

    plt = pyplot()

    fig, (ax_err, ax_loss, ax_lr) = plt.subplots(1, 3, figsize=(15, 4.3))
    for i, (label, rows) in enumerate(zip(labels, metrics, strict=True)):
        if not rows:
            continue
        colour = f"C{i % 10}"
        epochs = [r["epoch"] for r in rows]

        def line(ax, key, style, scale=1.0, tag="", rows=rows, epochs=epochs, colour=colour,
                 label=label):
            ys = [None if r.get(key) is None else scale * r[key] for r in rows]
            if any(y is not None for y in ys):
                ax.plot(epochs, [float("nan") if y is None else y for y in ys], style,
                        color=colour, label=label + tag)

        line(ax_err, "test_top1_err", "o-", 100)
        line(ax_loss, "train_loss", ".-", tag=" (train)")
        line(ax_loss, "test_loss", "x--", tag=" (test)")
        line(ax_lr, "lr", "o-")
    ax_err.set(xlabel="epoch", ylabel="test top-1 error (%)", title="test error")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss (train -, test --)")
    ax_lr.set(xlabel="epoch", ylabel="learning rate (end of epoch)", title="learning rate")
    every_epoch = [r["epoch"] for rows in metrics for r in rows]
    for ax in (ax_err, ax_loss, ax_lr):
        ax.grid(alpha=0.3)
        epoch_ticks(ax, every_epoch)
    if ax_err.lines:
        ax_err.legend(fontsize=8)
    fig.tight_layout()
    return fig


def accuracy_figure(labels: list[str], rows: list[dict[str, Any]]):
    """Top-1 accuracy (%) against GMACs per image, one axis per data set (its title)."""
    from .._plotting import pyplot

    plt = pyplot()

    datasets = list(dict.fromkeys(str(r["data"]) for r in rows))
    fig, axes = plt.subplots(1, len(datasets), figsize=(6 * len(datasets), 4.5), squeeze=False)
    for ax, data in zip(axes[0], datasets, strict=True):
        pts = [(lab, r["gmacs"], r["top1_acc"]) for lab, r in zip(labels, rows, strict=True)
               if str(r["data"]) == data]
        xs = [p[1] for p in pts]
        _scatter(ax, pts, logx=bool(xs) and min(xs) > 0 and max(xs) > 3 * min(xs))
        ax.set(ylabel="test top-1 accuracy (%)", title=data)
    fig.tight_layout()
    return fig


def plot_accuracy_vs_macs(points: list[tuple[str, float, float | None]], path: str | Path, *,
                          title: str, ylabel: str, logx: bool = True,
                          sizes: list[float] | None = None) -> None:
    """Scatter of (label, GMACs, accuracy in [0, 1]) with each point labelled, on one axis
    (benchmarks/zoo_table.py: published ImageNet accuracies)."""
    from .._plotting import pyplot

    plt = pyplot()

    fig, ax = plt.subplots(figsize=(8, 5.5))
    _scatter(ax, points, logx=logx, sizes=sizes)
    ax.set(ylabel=ylabel, title=title)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)


def _scatter(ax, points: list[tuple[str, float, float | None]], *, logx: bool,
             sizes: list[float] | None = None) -> None:
    pts = [(lab, x, y) for lab, x, y in points if y is not None]
    for i, (label, x, y) in enumerate(pts):
        ax.scatter([x], [100 * y], s=sizes[i] if sizes else 40, alpha=0.7, color=f"C{i % 10}")
        ax.annotate(label, (x, 100 * y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    if logx and pts and min(p[1] for p in pts) > 0:
        ax.set_xscale("log")
    ax.set(xlabel="multiply-adds per image (G)")
    ax.grid(alpha=0.3, which="both")


def format_compare(result: Comparison) -> str:
    rows = result.rows
    head = (f"{'run':<32} {'model':<16} {'data':<10} {'epochs':>6} {'params':>12} {'GMACs':>9} "
            f"{'top-1 %':>8} {'top-5 %':>8} {'train s':>8}")
    lines = [head, "-" * len(head)]

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:.2f}"

    for label, r in zip(result.labels, rows, strict=True):
        t = "-" if r["train_time_s"] is None else f"{r['train_time_s']:.0f}"
        lines.append(f"{label[-32:]:<32} {r['model']:<16} {str(r['data']):<10} "
                     f"{str(r['epochs']):>6} {r['params']:>12,} {r['gmacs']:>9.4f} "
                     f"{pct(r['top1_acc']):>8} {pct(r['top5_acc']):>8} {t:>8}")
    lines.append("")
    if not result.settings:
        lines.append("settings: the runs' config.json agree (besides out and the command line)")
    else:
        import json

        width = max(len(k) for k in result.settings)
        cols = [max(12, len(lab[-24:])) for lab in result.labels]
        lines.append("settings that differ:")
        lines.append(f"{'setting':<{width}}  " + "  ".join(
            f"{lab[-24:]:<{w}}" for lab, w in zip(result.labels, cols, strict=True)))
        for key, values in result.settings.items():
            lines.append(f"{key:<{width}}  " + "  ".join(
                f"{json.dumps(v)[:w]:<{w}}" for v, w in zip(values, cols, strict=True)))
    if result.files:
        lines.append("")
        lines.append("written: " + ", ".join(str(f) for f in result.files))
    return "\n".join(line.rstrip() for line in lines)
