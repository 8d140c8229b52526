"""Helpers the experiment modules share: data choice, arms x seeds training, curve extraction."""

from __future__ import annotations

from typing import Any

from ..data.locate import find_data
from ._training import Context, TrainRecord
from .analysis import format_mean_spread, moving_average
from .data import subset_source


def mnist_data(ctx: Context, n_train: int | None = None, n_test: int | None = None, *,
               augment: bool = True) -> tuple[str, str | None]:
    """(data name, data dir) for MNIST: the full set when found, else the embedded subset (noted
    on the page); ``n_train`` cuts the training split to a balanced subset; ``augment=False``
    drops the mnist preset's random shifts."""
    path = find_data("mnist", ctx.mnist_dir).data_dir
    if path is None:
        ctx.notes.append("Data: the embedded MNIST subset (10,000 training / 2,000 test images); "
                         "full MNIST was not found (pass --mnist-dir or provide ../shared/data).")
    else:
        ctx.notes.append(f"Data: MNIST from {path}"
                         + (f", training split cut to {n_train} balanced images" if n_train else "")
                         + (f", test split cut to {n_test}" if n_test else "")
                         + ("" if augment else ", no augmentation") + ".")
    if n_train is None and n_test is None and augment:
        return "mnist", None if path is None else str(path)
    return ctx.use_source(subset_source("mnist", path, n_train=n_train, n_test=n_test,
                                        augment=augment)), None


def cifar_data(ctx: Context, *, n_train: int | None = None, n_test: int | None = None,
               augment: bool = True, raw_pixels: bool = False) -> tuple[str, None]:
    """(data name, None) of CIFAR-10 (see :func:`convzoo.data.locate.find_data`), optionally
    subset / unaugmented."""
    found = find_data("cifar10", ctx.data_dir)
    base, path, val_split = found.data, found.data_dir, found.val_split
    what = "the JPEG copy of CIFAR-10 (slightly lossy, see ../shared/data/README.md)" if (
        base == "folder") else "CIFAR-10"
    ctx.notes.append(
        f"Data: {what} from {found.shown}"
        + (f", training split cut to {n_train} class-balanced images" if n_train else "")
        + ("" if augment else ", no augmentation")
        + (", raw 0-255 pixels minus the per-channel mean" if raw_pixels else "")
        + "; test split: "
        + (f"a class-balanced {n_test} of the 10,000 images (evaluating every epoch on all of "
           "them would cost more than the training on a CPU)." if n_test else "the full 10,000."))
    source = subset_source(base, path, n_train=n_train, n_test=n_test, augment=augment,
                           val_split=val_split, preset_of="cifar10", raw_pixels=raw_pixels)
    return ctx.use_source(source), None


def train_arms(ctx: Context, arms: dict[str, Any], seeds: list[int] | None = None
               ) -> dict[str, list[TrainRecord]]:
    """Every arm (label -> TrainConfig) for every seed (default: the context's), seeds outermost
    so that a cut-short run still has every arm for its first seeds."""
    out: dict[str, list[TrainRecord]] = {a: [] for a in arms}
    for seed in ctx.seeds if seeds is None else seeds:
        for arm, cfg in arms.items():
            out[arm].append(ctx.train(cfg, arm=slug(arm), seed=seed))
    return out


def train_tuned(ctx: Context, arm: str, configs: dict[float, Any], *, window: int = 50,
                final: dict[float, Any] | None = None
                ) -> tuple[float, list[TrainRecord], dict[float, TrainRecord]]:
    """One arm with its learning rate chosen per arm: every candidate (lr -> TrainConfig) on the
    first seed, the one ending at the lowest training loss (trailing mean over ``window`` steps;
    a diverged run is never chosen) kept, then the other seeds at it. Chosen on the training
    loss, not on the test split the page reports. ``final`` (same keys): the configurations
    every seed then trains at the chosen lr (e.g. longer than the tuning runs; default: the
    tuning ones, whose first-seed run is reused). Returns (lr, its records over every seed, the
    first seed's record per candidate)."""
    first = ctx.seeds[0]
    trials = {lr: ctx.train(cfg, arm=slug(f"{arm} lr {lr:g}"), seed=first)
              for lr, cfg in configs.items()}

    def final_loss(lr: float) -> float:
        rec = trials[lr]
        if rec.diverged or not rec.step_loss:
            return float("inf")
        return moving_average(rec.step_loss, window)[-1]

    best = min(trials, key=final_loss)
    if final is None:
        recs = [trials[best]] + [ctx.train(configs[best], arm=slug(f"{arm} lr {best:g}"), seed=s)
                                 for s in ctx.seeds[1:]]
    else:
        recs = [ctx.train(final[best], arm=slug(f"{arm} lr {best:g} final"), seed=s)
                for s in ctx.seeds]
    return best, recs, trials


def slug(text: str) -> str:
    keep = [c if c.isalnum() else "-" for c in text.lower()]
    return "-".join(p for p in "".join(keep).split("-") if p)


def epoch_curve(rec: TrainRecord, key: str) -> tuple[list[int], list[float]]:
    """(epochs, values) of one metrics.csv column, skipping empty cells."""
    xs, ys = [], []
    for r in rec.rows:
        v = r.get(key)
        if v is not None:
            xs.append(r["epoch"])
            ys.append(float(v))
    return xs, ys


def smoothed_err(rec: TrainRecord, window: int) -> list[float]:
    return moving_average(rec.step_err, window)


def pct(values: list[float | None], censored: str | None = None, fmt: str = ".2f") -> str:
    return format_mean_spread(values, fmt, scale=100.0, censored=censored)


def num(values: list[float | None], censored: str | None = None, fmt: str = ".3g") -> str:
    return format_mean_spread(values, fmt, censored=censored)


def mean_of(values: list[float | None], scale: float = 1.0) -> float | None:
    from .analysis import mean_spread

    m = mean_spread(values)[0]
    return None if m is None else m * scale
