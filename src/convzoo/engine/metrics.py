"""Top-k accuracy and per-class accuracy, the ILSVRC scores."""

from __future__ import annotations

from collections.abc import Iterable

import torch


def topk_hits(logits: torch.Tensor, targets: torch.Tensor, ks: Iterable[int] = (1, 5)
              ) -> torch.Tensor:
    """(len(ks),) int64 tensor on the logits' device: how many samples have their true class
    among the ``k`` highest logits, for each k (no wait for a GPU: nothing is read back).

    A ``k`` larger than the number of classes counts every sample (the true class is always
    among all of them).
    """
    ks = tuple(ks)
    kmax = min(max(ks), logits.shape[1])
    top = logits.topk(kmax, dim=1).indices  # (N, kmax), best first
    hits_upto = top.eq(targets.view(-1, 1)).sum(0).cumsum(0)  # [j]: true class in the top j+1
    # Python-int indexing and a stack: a list index would be a (GPU-blocking) host copy.
    return torch.stack([hits_upto[min(k, kmax) - 1] for k in ks])


def topk_correct(logits: torch.Tensor, targets: torch.Tensor, ks: Iterable[int] = (1, 5)
                 ) -> dict[int, int]:
    """:func:`topk_hits` as a dict ``{k: count}`` of Python ints."""
    ks = tuple(ks)
    return dict(zip(ks, topk_hits(logits, targets, ks).tolist(), strict=True))


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
