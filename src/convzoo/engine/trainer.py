"""``fit``: train a zoo model on a data set and write a run directory.

A run directory holds ``config.json`` (the effective config), ``metrics.csv`` (one row per epoch),
``final.json`` (top-1/top-5 accuracy and error as fractions), ``model.safetensors`` (final
weights, with the model name, its arguments and the class names in the metadata),
``classes.json`` and ``curves.png``.
"""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..data import BatchLoader, load_dataset, preset_for
from ..errors import ConvzooError
from ..registry import create_model, model_info
from ..weights import atomic_write, save_weights
from .config import TrainConfig
from .device import resolve_device
from .evaluate import evaluate_model
from .progress import Reporter

METRIC_FIELDS = ["epoch", "epochs", "lr", "train_loss", "train_acc", "test_loss", "test_top1_acc",
                 "test_top5_acc", "test_top1_err", "test_top5_err", "images_per_s", "epoch_time_s"]


@dataclass
class FitResult:
    run_dir: Path
    final: dict[str, Any]  # the contents of final.json
    model: torch.nn.Module


def default_run_dir(cfg: TrainConfig) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{cfg.model}-{cfg.data}-{stamp}"


def prepare_run_dir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise ConvzooError(f"cannot write run directory {path}: {e.strerror or e}") from None
    return path


def write_json(path: Path, value: Any) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(value, indent=2) + "\n"))


def lr_lambda(cfg: TrainConfig, steps_per_epoch: int):
    """Multiplier of the peak lr at a given optimizer step (0-based)."""
    total = cfg.epochs * steps_per_epoch

    def cosine(step: int) -> float:
        return 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))

    def step_decay(step: int) -> float:
        return cfg.lr_gamma ** ((step // steps_per_epoch) // cfg.lr_step_epochs)

    return cosine if cfg.lr_scheduler == "cosine" else step_decay


def fit(cfg: TrainConfig, reporter: Reporter | None = None) -> FitResult:
    """Train ``cfg.model`` on ``cfg.data`` with SGD; evaluate after every epoch; write the run."""
    cfg = cfg.validate()
    reporter = reporter or Reporter()
    info = model_info(cfg.model)  # fails early on an unknown name
    device = resolve_device(cfg.device)
    train_set = load_dataset(cfg.data, cfg.data_dir, "train")
    test_set = load_dataset(cfg.data, cfg.data_dir, "test")
    run_dir = prepare_run_dir(Path(cfg.out) if cfg.out else default_run_dir(cfg))

    torch.manual_seed(cfg.seed)
    in_chans = cfg.in_chans or train_set.shape[0]
    num_classes = cfg.num_classes or len(train_set.classes)
    model_args = {"num_classes": num_classes, "in_chans": in_chans, **cfg.model_args}
    preset = preset_for(cfg.data, in_chans=in_chans, image_size=train_set.shape[1],
                        model_size=info.input_size[1])
    write_json(run_dir / "config.json", cfg.to_dict())
    write_json(run_dir / "classes.json", train_set.classes)
    write_json(run_dir / "preset.json", preset.to_dict())
    reporter.start(
        f"training {cfg.model} on {cfg.data} ({train_set.source}: {len(train_set)} train / "
        f"{len(test_set)} test images) on {device}, run directory {run_dir}"
    )
    if cfg.engine == "numpy":
        from .numpy_engine import fit_numpy  # NumPy engine: same data, run dir and weights file

        return fit_numpy(cfg, train_set, test_set, preset, run_dir, model_args, reporter)

    model = create_model(cfg.model, **model_args)
    if cfg.conv == "gemm":
        from .. import gemm  # every nn.Conv2d becomes unfold (im2col) + matmul

        model = gemm.convert(model)
    model = model.to(device)
    loader = BatchLoader(train_set, preset, batch_size=cfg.batch_size, train=True, device=device,
                         in_chans=in_chans, seed=cfg.seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                weight_decay=cfg.wd)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg, len(loader)))

    rows: list[dict[str, Any]] = []
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        reporter.start_epoch(epoch, cfg.epochs, len(loader))
        lr = optimizer.param_groups[0]["lr"]
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        seen = 0
        for x, y in loader:
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum += loss.detach() * len(y)
            correct += (logits.detach().argmax(1) == y).sum()
            seen += len(y)
            reporter.step(loss.item(), correct.item() / seen, seen / (time.perf_counter() - t0))
        train_time = time.perf_counter() - t0
        train_loss = float(loss_sum) / seen
        if not math.isfinite(train_loss):
            raise ConvzooError(
                f"training diverged in epoch {epoch}: loss is {train_loss} at lr {lr:g}; "
                f"try a smaller --lr"
            )
        ev = evaluate_model(model, test_set, preset, batch_size=cfg.eval_batch_size, device=device,
                            in_chans=in_chans)
        rows.append({
            "epoch": epoch, "epochs": cfg.epochs, "lr": lr, "train_loss": train_loss,
            "train_acc": float(correct) / seen, "test_loss": ev.loss,
            "test_top1_acc": ev.topk_acc[1], "test_top5_acc": ev.topk_acc[5],
            "test_top1_err": 1 - ev.topk_acc[1], "test_top5_err": 1 - ev.topk_acc[5],
            "images_per_s": seen / train_time, "epoch_time_s": train_time,
        })
        write_metrics(run_dir, rows)
        reporter.end_epoch(rows[-1])

    return finish_run(run_dir, cfg, model, model_args, train_set.classes, ev, rows, reporter)


def write_metrics(run_dir: Path, rows: list[dict[str, Any]]) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=METRIC_FIELDS)
            w.writeheader()
            w.writerows(rows)

    atomic_write(run_dir / "metrics.csv", write)


def finish_run(run_dir, cfg, model, model_args, classes, ev, rows, reporter) -> FitResult:
    """Write the weights, final.json and curves.png of a finished run (either engine)."""
    from ..analysis.plots import plot_curves

    save_weights(run_dir / "model.safetensors", model, model_name=cfg.model,
                 model_args=model_args, classes=classes,
                 extra={"data": cfg.data, "engine": cfg.engine, "top1_acc": ev.topk_acc[1]})
    final = {
        "model": cfg.model, "data": cfg.data, "epochs": cfg.epochs,
        "train_time_s": sum(r["epoch_time_s"] for r in rows), **ev.to_dict(),
    }
    write_json(run_dir / "final.json", final)
    plot_curves(rows, run_dir / "curves.png", title=f"{cfg.model} on {cfg.data}")
    reporter.finish(
        f"test top-1 acc {ev.topk_acc[1]:.4f} (err {1 - ev.topk_acc[1]:.4f}), "
        f"top-5 acc {ev.topk_acc[5]:.4f} (err {1 - ev.topk_acc[5]:.4f}) on {ev.n} images\n"
        f"run directory: {run_dir}"
    )
    return FitResult(run_dir=run_dir, final=final, model=model)
