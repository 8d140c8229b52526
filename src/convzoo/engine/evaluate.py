"""Evaluation: top-1 … top-5 accuracy and error, per-class accuracy, loss."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..data import BatchLoader, DataPreset, ImageDataset
from ..errors import ConvzooError
from .metrics import per_class_accuracy, topk_correct

KS = (1, 2, 3, 4, 5)


@dataclass
class EvalResult:
    n: int
    loss: float  # mean cross-entropy (nats)
    topk_acc: dict[int, float]  # k -> fraction in [0, 1]
    per_class_acc: list[float | None]
    classes: list[str]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"n": self.n, "loss": self.loss}
        for k, acc in self.topk_acc.items():
            out[f"top{k}_acc"] = acc
            out[f"top{k}_err"] = 1.0 - acc
        out["per_class_acc"] = dict(zip(self.classes, self.per_class_acc, strict=False))
        return out


@torch.no_grad()
def evaluate_model(
    model: nn.Module,
    dataset: ImageDataset,
    preset: DataPreset,
    *,
    batch_size: int = 500,
    device: torch.device | str = "cpu",
    in_chans: int | None = None,
) -> EvalResult:
    """Score ``model`` (moved to ``device``, put in eval mode) on every image of ``dataset``."""
    was_training = model.training
    model.eval()
    loader = BatchLoader(dataset, preset, batch_size=batch_size, train=False, device=device,
                         in_chans=in_chans)
    correct = dict.fromkeys(KS, 0)
    loss_sum, preds = 0.0, []
    for x, y in loader:
        logits = model(x)
        if isinstance(logits, tuple):  # a model built with auxiliary heads: (logits, aux, ...)
            logits = logits[0]
        loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
        for k, c in topk_correct(logits, y, KS).items():
            correct[k] += c
        preds.append(logits.argmax(1))
    model.train(was_training)
    n = len(dataset)
    pred = torch.cat(preds).cpu()
    return EvalResult(
        n=n,
        loss=loss_sum / n,
        topk_acc={k: c / n for k, c in correct.items()},
        per_class_acc=per_class_accuracy(pred, dataset.labels, len(dataset.classes)),
        classes=list(dataset.classes),
    )


def load_trained(source: str | Path, *, model: str | None = None):
    """(model, weights file, run dir or None) from a run directory, a weights file or a shipped
    ``model:tag`` (``lenet5:mnist``)."""
    from ..registry import create_model
    from ..weights import load_state_dict_checked, read_weights, shipped_weights_path

    source = shipped_weights_path(source) or Path(source)
    run_dir = source if source.is_dir() else None
    path = source / "model.safetensors" if run_dir else source
    if run_dir is not None and not path.is_file():
        raise ConvzooError(f"run directory {run_dir} has no model.safetensors (unfinished run?)")
    wf = read_weights(path)
    name = model or wf.model
    if name is None:
        raise ConvzooError(f"weights file {path} does not name its model; pass --model NAME")
    if model and wf.model and model != wf.model:
        raise ConvzooError(f"weights {path} are for model {wf.model!r}, not {model!r}")
    args = dict(wf.model_args)
    net = create_model(name, **args)
    load_state_dict_checked(net, wf.state_dict, source=str(path))
    return net, wf, run_dir


def trained_test_split(
    source: str | Path,
    *,
    data: str | None,
    data_dir: str | None,
    trained_data: str | None,
    run_dir: Path | None,
) -> tuple[str, ImageDataset]:
    """(data set name, test split) to score a trained run or weights file on.

    ``data`` defaults to the set it was trained on (``trained_data`` from the weights' metadata, or
    the run's config.json); on that set the run's data dir and split folder names are reused
    unless others are given. Shared by every evaluation path (torch, NumPy, eval extras).
    """
    from ..data import load_dataset
    from .config import TrainConfig

    saved = TrainConfig.from_file(run_dir) if run_dir and (run_dir / "config.json").exists() else {}
    data = data or trained_data or saved.get("data")
    if data is None:
        raise ConvzooError(f"{source}: cannot tell which data set to evaluate on; pass --data NAME")
    splits = {}
    if data == saved.get("data"):
        data_dir = data_dir if data_dir is not None else saved.get("data_dir")
        splits = {k: saved.get(k) for k in ("train_split", "val_split")}
    return data, load_dataset(data, data_dir, "test", **splits)


def evaluate(
    source: str | Path,
    *,
    model: str | None = None,
    data: str | None = None,
    data_dir: str | None = None,
    batch_size: int = 500,
    device: str = "auto",
) -> dict[str, Any]:
    """Top-1 … top-5 accuracy/error and per-class accuracy of a run directory or weights file.

    The data set defaults to the one the weights were trained on (from their metadata or the run's
    config.json); the test split is scored.
    """
    from ..data import preset_for
    from ..registry import model_info
    from .device import resolve_device

    net, wf, run_dir = load_trained(source, model=model)
    data, test_set = trained_test_split(source, data=data, data_dir=data_dir,
                                        trained_data=wf.extra.get("data"), run_dir=run_dir)
    dev = resolve_device(device)
    in_chans = wf.model_args.get("in_chans", test_set.shape[0])
    info = model_info(model or wf.model)
    preset = preset_for(data, in_chans=in_chans, image_size=test_set.shape[1],
                        model_size=info.input_size[1])
    ev = evaluate_model(net.to(dev), test_set, preset, batch_size=batch_size, device=dev,
                        in_chans=in_chans)
    return {"model": info.name, "data": data, "source": str(source), **ev.to_dict()}
