"""Top-k accuracy and per-class accuracy, the ILSVRC scores."""

from __future__ import annotations

from collections.abc import Iterable

import torch


def topk_correct(logits: torch.Tensor, targets: torch.Tensor, ks: Iterable[int] = (1, 5)
                 ) -> dict[int, int]:
    """Number of samples whose true class is among the ``k`` highest logits, for each k.

    A ``k`` larger than the number of classes counts every sample (the true class is always
    among all of them).
    """
    ks = tuple(ks)
    kmax = min(max(ks), logits.shape[1])
    top = logits.topk(kmax, dim=1).indices  # (N, kmax), best first
    hit = top.eq(targets.view(-1, 1))  # (N, kmax): at most one True per row
    hits_upto = hit.cumsum(dim=1)  # hits_upto[:, k-1] = true class within the top k
    return {k: int(hits_upto[:, min(k, kmax) - 1].sum()) for k in ks}


def topk_accuracy(logits: torch.Tensor, targets: torch.Tensor, ks: Iterable[int] = (1, 5)
                  ) -> dict[int, float]:
    """Fraction in [0, 1] of samples whose true class is in the top ``k``, for each k.

    Top-k error, as ILSVRC scores it, is ``1 - topk_accuracy``.
    """
    n = len(targets)
    if n == 0:
        raise ValueError("topk_accuracy needs at least one sample")
    return {k: c / n for k, c in topk_correct(logits, targets, ks).items()}


def per_class_accuracy(preds: torch.Tensor, targets: torch.Tensor, num_classes: int
                       ) -> list[float | None]:
    """Top-1 accuracy of each class (None for a class absent from ``targets``)."""
    total = torch.bincount(targets, minlength=num_classes)
    correct = torch.bincount(targets[preds == targets], minlength=num_classes)
    pairs = zip(correct.tolist(), total.tolist(), strict=True)
    return [None if t == 0 else c / t for c, t in pairs]
