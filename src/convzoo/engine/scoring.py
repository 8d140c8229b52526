"""THE evaluation loop: top-1 … top-5 accuracy and error, per-class accuracy, loss.

:func:`evaluate_model` is the one loop that scores a model on a data set: the trainer's
evaluation of each epoch, the NumPy engine's and :func:`convzoo.evaluate`'s (a trained source,
with multi-crop, ECE and the confusion matrix applied to its result) all call it. It scores any
model (an ``nn.Module`` or a plain function from a float batch to logits) on either kind of
data set, through :func:`convzoo.data.make_loader`: in-memory
:class:`~convzoo.data.ImageDataset` batches, or a streamed :class:`~convzoo.data.FolderDataset`
decoded by DataLoader workers. Under DDP each process scores
its share of the images and the sums are all-reduced, so every process gets the same result.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..data import DataPreset, make_loader
from ..errors import ConvzooError, DataError
from .distributed import DistContext, all_gather_object, all_reduce_sum, shard_indices
from .metrics import topk_hits

KS = (1, 2, 3, 4, 5)
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class EvalResult:
    n: int  # images scored (bad files skipped on streamed data are not counted)
    loss: float  # mean cross-entropy (nats)
    topk_acc: dict[int, float]  # k -> fraction in [0, 1]
    per_class_acc: list[float | None]
    classes: list[str]
    # With keep_outputs=True: softmax probabilities (N, C) float32 and labels (N,) int64, on the
    # CPU, rows in the data set's order (under DDP: every process's rows, gathered).
    probs: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason), this process

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: accuracies are counts / n, so 10 significant digits hold them exactly
        (``1 - 0.971`` would be stored as 0.029000000000000026). Per-class keys are the class
        names, made unique as ``"name (index)"`` where two classes share a name (ImageNet's two
        "crane" classes) so that neither overwrites the other."""
        out: dict[str, Any] = {"n": self.n, "loss": self.loss}
        for k, acc in self.topk_acc.items():
            out[f"top{k}_acc"] = measured(acc)
            out[f"top{k}_err"] = measured(1.0 - acc)
        twice = {c for c, m in Counter(self.classes).items() if m > 1}
        keys = [f"{c} ({i})" if c in twice else c for i, c in enumerate(self.classes)]
        out["per_class_acc"] = {key: None if acc is None else measured(acc)
                                for key, acc in zip(keys, self.per_class_acc, strict=False)}
        return out

    def _repr_html_(self) -> str:
        return evaluation_html(self.to_dict())


class Evaluation(dict):
    """What :func:`evaluate` returns: a plain JSON-ready dict, shown in Jupyter as tables."""

    def _repr_html_(self) -> str:
        return evaluation_html(self)


def evaluation_html(result: dict[str, Any]) -> str:
    """An evaluation (:meth:`EvalResult.to_dict`'s keys, with any header keys before them) as
    HTML: the top-1 ... top-5 accuracy and error, then the per-class accuracy, folded."""
    from .._html import pct, table

    ks = [k for k in KS if f"top{k}_acc" in result]
    head = ", ".join(f"{key} {result[key]}" for key in ("source", "model", "test_set")
                     if key in result)
    caption = (f"{head + ': ' if head else ''}{result.get('n', '?')} images, "
               f"loss {result.get('loss', float('nan')):.4f}")
    out = table(["k", "top-k accuracy", "top-k error"],
                [[k, pct(result[f"top{k}_acc"]), pct(result[f"top{k}_err"])] for k in ks],
                caption=caption, right=(0, 1, 2))
    per_class = result.get("per_class_acc") or {}
    if per_class:
        rows = table(["class", "top-1 accuracy"], [[c, pct(a)] for c, a in per_class.items()],
                     right=(1,))
        out += f"<details><summary>per class ({len(per_class)})</summary>{rows}</details>"
    return out


def measured(x: float) -> float:
    """A fraction of counts (hits / n) as stored: 10 significant digits, no float noise."""
    return float(f"{x:.10g}")


@contextlib.contextmanager
def _eval_mode(model: Callable[[torch.Tensor], Any]):
    """``model.eval()`` for the block, its previous mode restored after (plain functions: no-op)."""
    if not isinstance(model, nn.Module):
        yield
        return
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def autocast(amp: str, device: torch.device) -> contextlib.AbstractContextManager:
    """Mixed precision for ``amp`` "bf16" / "fp16" on ``device``; "none": a no-op."""
    if amp == "none":
        return contextlib.nullcontext()
    if amp not in AMP_DTYPES:
        raise ConvzooError(f"amp {amp!r}: expected one of none, bf16, fp16")
    return torch.autocast(device_type=device.type, dtype=AMP_DTYPES[amp])


def amp_mode(amp: bool | str, device: torch.device) -> str:
    """The CLI's ``--amp`` switch as an autocast mode: bf16 on the CPU, fp16 on CUDA."""
    if isinstance(amp, str):
        return amp
    return ("fp16" if device.type == "cuda" else "bf16") if amp else "none"


@torch.no_grad()
def evaluate_model(
    model: Callable[[torch.Tensor], Any],
    dataset: Any,
    preset: DataPreset,
    *,
    batch_size: int = 500,
    device: torch.device | str = "cpu",
    in_chans: int | None = None,
    ctx: DistContext | None = None,
    amp: str = "none",
    channels_last: bool = False,
    workers: int = 4,
    keep_outputs: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> EvalResult:
    """Score ``model`` on every image of ``dataset`` (in memory or streamed).

    Args:
        model: an ``nn.Module`` already on ``device`` (put in eval mode for the call, its mode
            restored after) or any callable mapping a float (B, C, H, W) batch to logits (B, K);
            a tuple output (a model built with auxiliary heads) is scored on its first element.
        dataset: an :class:`~convzoo.data.ImageDataset` or a streamed
            :class:`~convzoo.data.FolderDataset`; bad files of the latter are skipped (with its
            ``on_bad_file="skip"``) and listed in ``EvalResult.skipped``.
        preset: the evaluation transform (:func:`convzoo.data.preset_for`).
        ctx: under DDP, each process scores every ``world``-th image (no padding, so no image is
            counted twice) and the sums are all-reduced: every process returns the whole result.
        amp: "none", "bf16" or "fp16": autocast for the forward pass (the loss in float32).
        channels_last: feed the batches in channels_last memory format.
        workers: DataLoader processes decoding a streamed data set (pinned memory on CUDA).
        keep_outputs: also return the softmax probabilities and labels (ECE, confusion, ...).
        progress: called after every batch with (images scored, images to score) by this
            process (e.g. :func:`convzoo.engine.progress.eval_progress`'s bar).
    """
    device = torch.device(device)
    ctx = ctx or DistContext()
    part = (dataset.subset(shard_indices(torch.arange(len(dataset)), ctx, pad=False))
            if ctx.enabled else dataset)
    loader = make_loader(part, preset, batch_size=batch_size, train=False, device=device,
                         in_chans=in_chans, workers=workers, channels_last=channels_last)
    tally = _Tally(len(dataset.classes), device)
    probs, labels, done = [], [], 0
    with _eval_mode(model):
        for x, y in loader:
            with autocast(amp, device):
                logits = model(x)
            if isinstance(logits, tuple):  # a model built with auxiliary heads: (logits, aux...)
                logits = logits[0]
            tally.add(logits.float(), y)
            if keep_outputs:
                probs.append(logits.float().softmax(1).cpu())
                labels.append(y.cpu())
            if progress is not None:
                done += len(y)
                progress(done, len(part))
    result = tally.result(ctx, dataset, skipped=list(getattr(loader, "skipped", [])))
    if keep_outputs:
        result.probs, result.labels = _gather_outputs(probs, labels, len(dataset.classes),
                                                      len(result.skipped), ctx)
    return result


class _Tally:
    """The sums an evaluation needs, kept on the device as one float64 vector and read back once
    at the end (no wait for a GPU per batch): loss, top-k hits, per-class images and hits."""

    def __init__(self, classes: int, device: torch.device) -> None:
        self.c = classes
        self.sums = torch.zeros(1 + len(KS) + 2 * classes, dtype=torch.float64, device=device)

    def add(self, logits: torch.Tensor, y: torch.Tensor) -> None:
        # Per (class, right or wrong) counts in one bincount without weights (which CUDA's
        # deterministic mode refuses) and without a boolean index (a wait for the GPU).
        pairs = torch.bincount(y * 2 + (logits.argmax(1) == y), minlength=2 * self.c)
        pairs = pairs.view(self.c, 2).double()  # [:, 0] wrong, [:, 1] right
        self.sums += torch.cat([
            F.cross_entropy(logits, y, reduction="sum").double().view(1),
            topk_hits(logits, y, KS).double(),
            pairs.sum(1),
            pairs[:, 1],
        ])

    def result(self, ctx: DistContext, dataset: Any, *, skipped: list) -> EvalResult:
        """All processes' sums added up (on the device: NCCL reduces CUDA tensors only)."""
        k, c = len(KS), self.c
        sums = all_reduce_sum(self.sums, ctx).cpu()
        loss, hits = sums[0], sums[1:1 + k]
        class_total, class_correct = sums[1 + k:1 + k + c], sums[1 + k + c:]
        n = int(class_total.sum())
        if n == 0:
            raise DataError(f"{getattr(dataset, 'source', 'the data set')}: no image to evaluate "
                            "(every file was skipped as bad, or the split is empty)")
        return EvalResult(
            n=n,
            loss=float(loss) / n,
            topk_acc={kk: float(hits[i]) / n for i, kk in enumerate(KS)},
            per_class_acc=[None if t == 0 else h / t for h, t in
                           zip(class_correct.tolist(), class_total.tolist(), strict=True)],
            classes=list(dataset.classes),
            skipped=skipped,
        )


def _gather_outputs(probs: list[torch.Tensor], labels: list[torch.Tensor], c: int, n_skipped: int,
                    ctx: DistContext) -> tuple[torch.Tensor, torch.Tensor]:
    """Every process's (probs, labels), back in the data set's order: process r scored images
    r, r + world, ...; with bad files skipped the rows are the scored images, rank by rank."""
    p = torch.cat(probs) if probs else torch.empty(0, c)
    y = torch.cat(labels) if labels else torch.empty(0, dtype=torch.int64)
    if not ctx.enabled:
        return p, y
    parts = all_gather_object((p, y, n_skipped), ctx)
    if any(part[2] for part in parts):
        return torch.cat([part[0] for part in parts]), torch.cat([part[1] for part in parts])
    n = sum(len(part[1]) for part in parts)
    out_p, out_y = torch.empty(n, c), torch.empty(n, dtype=torch.int64)
    for r, (pr, yr, _) in enumerate(parts):
        out_p[r::ctx.world], out_y[r::ctx.world] = pr, yr
    return out_p, out_y

