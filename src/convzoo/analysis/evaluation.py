"""Evaluation extras: logits of a whole test split, the confusion matrix (CSV + PNG), expected
calibration error, and multi-crop testing.

Multi-crop testing, as in AlexNet (Krizhevsky et al. 2012, §4.1): five crops (four corners and the
center) and their mirror images, softmax probabilities averaged over the 10 patches. The crops are
taken from the (normalised) test image zero-padded by the preset's training ``crop_padding`` (or
1/8 of its side when it has none, about AlexNet's 256/224), so the center crop is exactly the
single-crop input and the gain over it is printed. GoogLeNet's 144 crops (Szegedy et al. 2014,
§7): the image at 4 scales (shorter side 256, 288, 320, 352 for a 224 input), 3 squares per scale
(left/center/right, or top/middle/bottom), and per square its 4 corner crops, center crop and the
square itself resized, each with its mirror image: 4 x 3 x 6 x 2 = 144.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConvzooError
from .._io import atomic_write

log = logging.getLogger(__name__)


@dataclass
class Predictions:
    """Softmax probabilities (N, K) of a test split, with its targets (N,) and class names."""

    probs: torch.Tensor
    targets: torch.Tensor
    classes: list[str]


def _autocast(device: torch.device, amp: bool):
    if not amp:
        return torch.autocast(device.type, enabled=False)
    dtype = torch.bfloat16 if device.type == "cpu" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def _logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = model(x)
    return (out if isinstance(out, torch.Tensor) else out[0]).float()


def ten_crops(x: torch.Tensor, pad: int, *, mirror: bool = True) -> list[torch.Tensor]:
    """AlexNet's 10 patches of a batch (B, C, S, S): corners and center of the image padded by
    ``pad`` (center first), then their mirror images."""
    s_h, s_w = x.shape[-2:]
    padded = F.pad(x, (pad,) * 4)
    offsets = [(pad, pad), (0, 0), (0, 2 * pad), (2 * pad, 0), (2 * pad, 2 * pad)]
    crops = [padded[..., i:i + s_h, j:j + s_w] for i, j in offsets]
    return crops + [c.flip(-1) for c in crops] if mirror else crops


def googlenet_crops(x: torch.Tensor, *, scales: tuple[int, ...] = (256, 288, 320, 352),
                    base: int = 224) -> list[torch.Tensor]:
    """GoogLeNet's 144 patches of a batch (B, C, S, S) at the model's input size S."""
    size = x.shape[-1]
    out = []
    for scale in scales:
        side = max(size, round(size * scale / base))  # shorter side at this scale
        img = F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False)
        h, w = img.shape[-2:]
        # Three squares along the longer side (all three coincide for square images).
        starts = [0, (max(h, w) - min(h, w)) // 2, max(h, w) - min(h, w)]
        for st in starts:
            sq = img[..., st:st + min(h, w), :] if h > w else img[..., :, st:st + min(h, w)]
            q = sq.shape[-1]
            crops = [sq[..., i:i + size, j:j + size] for i, j in
                     [((q - size) // 2, (q - size) // 2), (0, 0), (0, q - size), (q - size, 0),
                      (q - size, q - size)]]
            crops.append(F.interpolate(sq, size=(size, size), mode="bilinear",
                                       align_corners=False))
            out.extend(crops + [c.flip(-1) for c in crops])
    return out


@torch.no_grad()
def collect_predictions(
    model: nn.Module,
    dataset,
    preset,
    *,
    batch_size: int = 500,
    device: torch.device | str = "cpu",
    in_chans: int | None = None,
    amp: bool = False,
    channels_last: bool = False,
    crops: str = "center",
    mirror: bool = True,
) -> dict[str, Predictions]:
    """Probabilities of every test image: ``{"center": ...}``, plus ``"ten"`` or ``"144"`` when
    ``crops`` asks for them (the center-crop result always comes with them, for the gain)."""
    from ..data import BatchLoader

    if crops not in ("center", "ten", "144"):
        raise ConvzooError(f"crops must be 'center', 'ten' or '144', got {crops!r}")
    device = torch.device(device)
    model = model.to(device).eval()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    loader = BatchLoader(dataset, preset, batch_size=batch_size, train=False, device=device,
                         in_chans=in_chans)
    pad = getattr(preset, "crop_padding", 0) or 0
    results: dict[str, list[torch.Tensor]] = {"center": []}
    if crops != "center":
        results[crops] = []
    targets = []

    def run(x: torch.Tensor) -> torch.Tensor:
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with _autocast(device, amp):
            return _logits(model, x).softmax(1)

    for x, y in loader:
        center = run(x)
        results["center"].append(center.cpu())
        if crops == "ten":
            p = pad or max(1, x.shape[-1] // 8)
            patches = ten_crops(x, p, mirror=mirror)
            results["ten"].append(torch.stack([run(c) for c in patches]).mean(0).cpu())
        elif crops == "144":
            patches = googlenet_crops(x)
            results["144"].append(torch.stack([run(c) for c in patches]).mean(0).cpu())
        targets.append(y.cpu())
    t = torch.cat(targets)
    return {k: Predictions(torch.cat(v), t, list(dataset.classes)) for k, v in results.items()}


def topk_from_probs(probs: torch.Tensor, targets: torch.Tensor, ks=(1, 5)) -> dict[int, float]:
    from ..engine.metrics import topk_accuracy

    return topk_accuracy(probs, targets, ks)


def confusion_matrix(preds: torch.Tensor, targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(K, K) int64 counts: row = true class, column = predicted class."""
    idx = targets.long() * num_classes + preds.long()
    return torch.bincount(idx, minlength=num_classes * num_classes).view(num_classes, num_classes)


def write_confusion_csv(cm: torch.Tensor, classes: list[str], path: str | Path) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["true \\ predicted", *classes])
            for name, row in zip(classes, cm.tolist(), strict=False):
                w.writerow([name, *row])

    atomic_write(path, write)


def plot_confusion(cm: torch.Tensor, classes: list[str], path: str | Path, *,
                   title: str = "confusion matrix") -> None:
    """Row-normalised confusion matrix as a PNG (counts written in cells for <= 20 classes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(classes)
    norm = cm.double() / cm.sum(1, keepdim=True).clamp(min=1)
    side = min(max(4.5, 0.45 * k + 2), 16)
    fig, ax = plt.subplots(figsize=(side + 1, side))
    im = ax.imshow(norm.numpy(), cmap="Blues", vmin=0, vmax=1)
    if k <= 30:
        ax.set_xticks(range(k), classes, rotation=90 if k > 10 else 45, ha="right" if k <= 10
                      else "center", fontsize=8)
        ax.set_yticks(range(k), classes, fontsize=8)
    if k <= 20:
        for i in range(k):
            for j in range(k):
                v = int(cm[i, j])
                if v:
                    ax.text(j, i, str(v), ha="center", va="center", fontsize=7,
                            color="white" if norm[i, j] > 0.5 else "black")
    ax.set(xlabel="predicted class", ylabel="true class", title=title)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)


def expected_calibration_error(probs: torch.Tensor, targets: torch.Tensor, n_bins: int = 15
                               ) -> float:
    """ECE (Guo et al. 2017, eq. 3): the confidence-weighted gap |accuracy - confidence| over
    ``n_bins`` equal-width bins of the top-1 confidence."""
    conf, pred = probs.max(1)
    correct = pred.eq(targets).double()
    conf = conf.double()
    edges = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64)
    ece = 0.0
    n = len(targets)
    for lo, hi in zip(edges[:-1], edges[1:], strict=False):
        mask = (conf > lo) & (conf <= hi)
        if lo == 0:
            mask |= conf == 0
        m = int(mask.sum())
        if m:
            ece += m / n * abs(float(correct[mask].mean()) - float(conf[mask].mean()))
    return ece


def evaluate_extra(
    source: str,
    *,
    model: str | None = None,
    data: str | None = None,
    data_dir: str | None = None,
    batch_size: int = 500,
    device: str = "auto",
    amp: bool = False,
    channels_last: bool = False,
    crops: str = "center",
    mirror: bool | None = None,
    confusion: str | Path | None = None,
    ece: bool = False,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Top-1 … top-5 accuracy, per-class accuracy, and what is asked for: confusion matrix files
    (``confusion``: a path prefix; ``PREFIX.csv`` and ``PREFIX.png`` are written), ECE, multi-crop
    accuracy and its gain over the center crop. Works on a run directory or a weights file.
    ``mirror`` (ten-crop) defaults to whether the training preset flips images."""
    from ..engine.device import resolve_device
    from ..engine.evaluate import trained_test_split
    from ..engine.metrics import per_class_accuracy
    from .loading import load_source

    dev = resolve_device(device)
    loaded = load_source(source, model=model)
    data, test_set = trained_test_split(source, data=data, data_dir=data_dir,
                                        trained_data=loaded.data, run_dir=loaded.run_dir)
    preset = _preset(loaded, data, test_set)
    if mirror is None:  # mirror images only for a net trained on flipped images (not digits)
        mirror = bool(getattr(preset, "hflip", False))
    preds = collect_predictions(loaded.model, test_set, preset, batch_size=batch_size, device=dev,
                                in_chans=loaded.in_chans, amp=amp, channels_last=channels_last,
                                crops=crops, mirror=mirror)
    center = preds["center"]
    k = center.probs.shape[1]
    acc = topk_from_probs(center.probs, center.targets, range(1, 6))
    out: dict[str, Any] = {"model": loaded.name, "data": data, "source": str(source),
                           "n": len(center.targets)}
    for i, a in acc.items():
        out[f"top{i}_acc"], out[f"top{i}_err"] = a, 1 - a
    pred1 = center.probs.argmax(1)
    per_class = per_class_accuracy(pred1, center.targets, k)
    out["per_class_acc"] = dict(zip(center.classes, per_class, strict=False))
    if ece:
        out["ece"] = expected_calibration_error(center.probs, center.targets)
    if crops != "center":
        multi = preds[crops]
        macc = topk_from_probs(multi.probs, multi.targets, (1, 5))
        n_crops = 144 if crops == "144" else (10 if mirror else 5)
        out["multi_crop"] = {"crops": n_crops, "top1_acc": macc[1], "top5_acc": macc[5],
                             "top1_gain": macc[1] - acc[1], "top5_gain": macc[5] - acc[5]}
    if confusion is not None:
        prefix = Path(confusion)
        if prefix.suffix in (".csv", ".png"):
            prefix = prefix.with_suffix("")
        cm = confusion_matrix(pred1, center.targets, k)
        classes = center.classes if len(center.classes) == k else [str(i) for i in range(k)]
        write_confusion_csv(cm, classes, prefix.with_suffix(".csv"))
        plot_confusion(cm, classes, prefix.with_suffix(".png"),
                       title=f"{loaded.name} on {data}: confusion matrix")
        out["confusion_csv"] = str(prefix.with_suffix(".csv"))
        out["confusion_png"] = str(prefix.with_suffix(".png"))
    return out


def _preset(loaded, data: str, test_set):
    """The run's own preset when it has one, else the data set's for this model."""
    from dataclasses import fields

    from ..data import DataPreset, preset_for

    if loaded.preset is not None:
        names = {f.name for f in fields(DataPreset)}
        return DataPreset(**{k: (tuple(v) if isinstance(v, list) else v)
                             for k, v in loaded.preset.items() if k in names})
    return preset_for(data, in_chans=loaded.in_chans, image_size=test_set.shape[1],
                      model_size=loaded.info.input_size[1])

