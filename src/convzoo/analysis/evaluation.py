"""Evaluation of a trained source: :func:`evaluate` (``convzoo.evaluate``, ``convzoo eval``) loads
a run directory, weights file or ``model:tag``, scores it on its test split with the one
evaluation loop (:func:`convzoo.engine.scoring.evaluate_model`), and applies to that result what
is asked for: the expected calibration error and the confusion matrix (CSV + PNG) of its
probabilities, and multi-crop testing (the loop again, on the model wrapped in
:class:`MultiCrop`).

Multi-crop testing, as in AlexNet (Krizhevsky et al. 2012, §4.1): five crops (four corners and the
center) and their mirror images, softmax probabilities averaged over the 10 patches. On a
streamed folder of large images they are torchvision's TenCrop of the resized image: the eval
preset's resize (256 for a 224 input) is kept and the five crops of the input size are taken from
its central square. In-memory images (and streamed ones resized whole to a small input) are
padded by the preset's training ``crop_padding`` (1/8 of the side when it has none, about
AlexNet's 256/224) and cropped back, so the center crop is exactly the single-crop input. The gain
over the single center crop is reported. GoogLeNet's 144 crops (Szegedy et al. 2014, §7): the
model's input at 4 scales (shorter side 256, 288, 320, 352 for a 224 input), 3 squares per scale
(left/center/right, or top/middle/bottom), and per square its 4 corner crops, center crop and the
square itself resized, each with its mirror image: 4 x 3 x 6 x 2 = 144.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .._io import atomic_write
from ..data import DataPreset
from ..engine.device import resolve_device
from ..engine.loaded import EvalSplit, Loaded, eval_split, load_trained
from ..engine.progress import eval_progress
from ..engine.rundir import refuse_output_in_run
from ..engine.scoring import EvalResult, Evaluation, amp_mode, evaluate_model
from ..errors import ConvzooError

log = logging.getLogger(__name__)


def _logits(out: Any) -> torch.Tensor:
    return (out if isinstance(out, torch.Tensor) else out[0]).float()


class MultiCrop(nn.Module):
    """A model scored on several crops of each batch: softmax averaged over the crops, returned
    as its logarithm (logits whose softmax is that average), so the evaluation loop's top-k,
    loss and probabilities are those of the multi-crop prediction."""

    def __init__(self, model: Callable[[torch.Tensor], Any],
                 crops: Callable[[torch.Tensor], list[torch.Tensor]]) -> None:
        super().__init__()
        self.model = model
        self.crops = crops

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = torch.stack([_logits(self.model(c)).softmax(1) for c in self.crops(x)]).mean(0)
        return probs.clamp_min(torch.finfo(probs.dtype).tiny).log()


def ten_crops(x: torch.Tensor, pad: int = 0, *, size: int | None = None, mirror: bool = True
              ) -> list[torch.Tensor]:
    """AlexNet's 10 patches of a batch (B, C, S, S): the center and the four corners of side
    ``size`` (default S) of the image padded by ``pad`` (center first), then their mirror
    images."""
    size = size or x.shape[-1]
    padded = F.pad(x, (pad,) * 4) if pad else x
    far, mid = padded.shape[-1] - size, (padded.shape[-1] - size) // 2
    offsets = [(mid, mid), (0, 0), (0, far), (far, 0), (far, far)]
    crops = [padded[..., i:i + size, j:j + size] for i, j in offsets]
    return crops + [c.flip(-1) for c in crops] if mirror else crops


def googlenet_crops(x: torch.Tensor, *, scales: tuple[int, ...] = (256, 288, 320, 352),
                    base: int = 224, size: int | None = None) -> list[torch.Tensor]:
    """GoogLeNet's 144 patches of side ``size`` (the model's input; default S) from a batch
    (B, C, S, S): the center square of the eval resize, or the center crop itself."""
    size = size or x.shape[-1]
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


def _confusion_prefix(confusion: str | Path) -> Path:
    """``--confusion PREFIX`` (PREFIX.csv or PREFIX.png named whole also mean PREFIX)."""
    prefix = Path(confusion)
    return prefix.with_suffix("") if prefix.suffix in (".csv", ".png") else prefix


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
    from .._plotting import pyplot

    plt = pyplot()

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


def multi_crop(crops: str, preset: DataPreset, *, mirror: bool
               ) -> tuple[Callable[[torch.Tensor], list[torch.Tensor]], DataPreset, int]:
    """(crop function, preset to load the batches with, number of crops) for ``crops`` "ten"
    or "144" (see the module's docstring)."""
    if crops not in ("ten", "144"):
        raise ConvzooError(f"crops must be 'center', 'ten' or '144', got {crops!r}")
    side = preset.crop_size
    # Streamed images are cropped from the resized image (the weights' own eval resize, e.g.
    # 232 for the V2 ResNets, 342 for inception_v3): batches of its central square.
    whole = (dataclasses.replace(preset, crop_size=preset.resize_size)
             if preset.streamed and preset.resize_size and preset.resize_size > side else None)
    if crops == "144":
        return (functools.partial(googlenet_crops, size=side) if whole else googlenet_crops,
                whole or preset, 144)
    n = 10 if mirror else 5
    if whole is not None:
        return functools.partial(ten_crops, size=side, mirror=mirror), whole, n

    def padded(x: torch.Tensor) -> list[torch.Tensor]:
        return ten_crops(x, preset.crop_padding or max(1, x.shape[-1] // 8), mirror=mirror)

    return padded, preset, n



def multi_crop_gain(job: EvalJob, single: EvalResult, crops: str, *, mirror: bool | None = None,
                    progress: bool = False, **loop: Any) -> dict[str, Any]:
    """Multi-crop testing of ``job`` ("ten" or "144" crops, see the module's docstring): the one
    loop on the model wrapped in :class:`MultiCrop`, and its gain over ``single`` (the center
    crop's result). ``mirror`` (ten-crop) defaults to whether the training preset flips images;
    ``loop``: the loop's batch size, autocast and workers."""
    preset = job.split.preset
    if mirror is None:  # mirror images only for a net trained on flipped images (not digits)
        mirror = bool(preset.hflip)
    fn, crop_preset, n = multi_crop(crops, preset, mirror=mirror)
    multi = job.score(model=MultiCrop(job.model, fn), preset=crop_preset,
                      progress=eval_progress(f"scoring {n} crops") if progress else None, **loop)
    a1, a5 = multi.topk_acc[1], multi.topk_acc[5]
    return {"crops": n, "top1_acc": a1, "top5_acc": a5,
            "top1_gain": a1 - single.topk_acc[1], "top5_gain": a5 - single.topk_acc[5]}


def write_confusion(result: EvalResult, confusion: str | Path, *, title: str) -> dict[str, str]:
    """The confusion matrix of ``result`` (scored with ``keep_outputs``) written to
    ``PREFIX.csv`` and ``PREFIX.png`` (``confusion``: the prefix); returns their paths."""
    prefix = _confusion_prefix(confusion)
    k = result.probs.shape[1]
    cm = confusion_matrix(result.probs.argmax(1), result.labels, k)
    classes = result.classes if len(result.classes) == k else [str(i) for i in range(k)]
    write_confusion_csv(cm, classes, prefix.with_suffix(".csv"))
    plot_confusion(cm, classes, prefix.with_suffix(".png"), title=title)
    return {"confusion_csv": str(prefix.with_suffix(".csv")),
            "confusion_png": str(prefix.with_suffix(".png"))}


def describe_test_set(data: str, dataset: Any) -> str:
    """Which test set was scored, in words: ``mnist (embedded 2,000-image subset ...)`` or
    ``cifar10 test split from DIR (10000 test images)``."""
    n = len(dataset)
    source = getattr(dataset, "source", None)
    if data == "mnist" and source == "embedded MNIST subset":
        return (f"mnist (embedded {n:,}-image subset of the 10,000-image test set; for the full "
                f"set pass --data-dir with the MNIST files)")
    return f"{data} test split" + (f" from {source}" if source else "") + f" ({n} test images)"


@dataclass
class EvalJob:
    """A trained source ready to score: the loaded model, the split to score it on, and the
    callable that computes its logits on ``device``."""

    loaded: Loaded
    split: EvalSplit
    model: Any  # nn.Module on ``device`` (torch) or the NumPy network's TorchView
    device: torch.device
    engine: str = "torch"
    channels_last: bool = False

    def header(self, source: str | Path) -> dict[str, Any]:
        out = {"model": self.loaded.name, "data": self.split.data, "source": str(source),
               "test_set": describe_test_set(self.split.data, self.split.dataset)}
        return {**out, "engine": self.engine} if self.engine != "torch" else out

    def score(self, *, model: Any = None, preset: DataPreset | None = None,
              **loop: Any) -> EvalResult:
        """The one loop (:func:`~convzoo.engine.scoring.evaluate_model`) on the split, with the
        job's device, channels and memory format; ``model`` (a :class:`MultiCrop` wrapper) and
        ``preset`` replace the job's own for this call, ``loop`` are the loop's other keywords."""
        return evaluate_model(self.model if model is None else model, self.split.dataset,
                              preset or self.split.preset, device=self.device,
                              in_chans=self.loaded.in_chans, channels_last=self.channels_last,
                              **loop)


def prepare_eval(source: str | Path, *, model: str | None = None, data: str | None = None,
                 data_dir: str | None = None, device: str | torch.device = "auto",
                 engine: str = "torch", channels_last: bool = False,
                 train_split: str | None = None, val_split: str | None = None) -> EvalJob:
    """Load ``source``, pick its test split (:func:`~convzoo.engine.loaded.eval_split`) and put
    the model on ``device``; ``engine="numpy"`` scores with the NumPy build of the model
    (convzoo.scratch) on the CPU."""
    if engine not in ("torch", "numpy"):
        raise ConvzooError(f"--engine must be 'torch' or 'numpy', got {engine!r}")
    loaded = load_trained(source, model=model)
    split = eval_split(loaded, data=data, data_dir=data_dir, train_split=train_split,
                       val_split=val_split)
    if engine == "numpy":
        from ..engine.numpy_engine import numpy_model

        if channels_last:
            raise ConvzooError("--engine numpy computes in NumPy's own layout; drop "
                               "--channels-last")
        return EvalJob(loaded, split, numpy_model(loaded), torch.device("cpu"), engine)
    dev = resolve_device(str(device))
    net = loaded.model.to(dev)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    return EvalJob(loaded, split, net, dev, engine, channels_last)


CROPS = {1: None, 10: "ten", 144: "144"}  # crops= -> the multi-crop testing it asks for


def evaluate(
    source: str | Path,
    *,
    model: str | None = None,
    data: str | None = None,
    data_dir: str | None = None,
    batch_size: int = 500,
    device: str = "auto",
    engine: str = "torch",
    amp: bool | str = False,
    channels_last: bool = False,
    workers: int = 4,
    crops: int = 1,
    mirror: bool | None = None,
    ece: bool = False,
    confusion: str | Path | None = None,
    train_split: str | None = None,
    val_split: str | None = None,
    progress: bool = False,
) -> Evaluation:
    """Top-1 … top-5 accuracy/error, loss and per-class accuracy of a run directory, weights file
    or shipped ``model:tag`` on a test split, and what is asked for besides.

    The data set defaults to the one the weights were trained on, scored with the run's own
    preset (:func:`convzoo.engine.loaded.eval_split`); ``engine="numpy"`` computes with the NumPy
    build of the model. ``amp``: True (bf16 on the CPU, fp16 on CUDA) or a mode name.
    ``crops``: 10 (AlexNet's ten crops; ``mirror``, default whether the training preset flips
    images, False: the five without their mirror images) or 144 (GoogLeNet's) adds
    ``multi_crop`` with the gain over the center crop; ``ece``: the expected calibration error;
    ``confusion``: a path prefix, ``PREFIX.csv`` and ``PREFIX.png`` are written. ``progress``: a
    bar per pass over the test set on a terminal (stderr).
    """
    for name, value, low in (("batch_size", batch_size, 1), ("workers", workers, 0)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ConvzooError(f"evaluate: {name} must be an integer >= {low}, got {value!r:.40}")
    if isinstance(crops, bool) or crops not in CROPS:
        raise ConvzooError(f"evaluate: crops must be 1, 10 or 144, got {crops!r:.40}")
    if confusion is not None:
        for suffix in (".csv", ".png"):
            refuse_output_in_run(_confusion_prefix(confusion).with_suffix(suffix), "--confusion")
    job = prepare_eval(source, model=model, data=data, data_dir=data_dir, device=device,
                       engine=engine, channels_last=channels_last, train_split=train_split,
                       val_split=val_split)
    loop = {"batch_size": batch_size, "amp": amp_mode(amp, job.device), "workers": workers}
    if engine == "numpy" and loop["amp"] != "none":
        raise ConvzooError("--engine numpy computes in float32; drop --amp")
    ev = job.score(keep_outputs=ece or confusion is not None,
                   progress=eval_progress("scoring") if progress else None, **loop)
    out = Evaluation({**job.header(source), **ev.to_dict()})
    if ece:
        out["ece"] = expected_calibration_error(ev.probs, ev.labels)
    if CROPS[crops] is not None:
        out["multi_crop"] = multi_crop_gain(job, ev, CROPS[crops], mirror=mirror,
                                            progress=progress, **loop)
    if confusion is not None:
        out.update(write_confusion(ev, confusion,
                                   title=f"{out['model']} on {out['data']}: confusion matrix"))
    return out
