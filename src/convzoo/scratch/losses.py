"""Cross-entropy on logits through a numerically stable log-softmax."""

from __future__ import annotations

import numpy as np


def log_softmax(z: np.ndarray, axis: int = 1) -> np.ndarray:
    """z - logsumexp(z): subtracting the row max first keeps exp() <= 1 (no overflow)."""
    shifted = z - z.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


class CrossEntropyLoss:
    """-log softmax(z)[y], averaged (``reduction="mean"``), summed or per sample ("none").

    ``forward(logits (N, K), target (N,) int)`` returns the loss; ``backward()`` returns
    dL/dlogits = (softmax(z) - onehot(y)) / N for the mean, without a grad_out argument when the
    loss is a scalar.
    """

    def __init__(self, reduction: str = "mean", label_smoothing: float = 0.0) -> None:
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
        self.reduction, self.label_smoothing = reduction, label_smoothing

    def __call__(self, logits: np.ndarray, target: np.ndarray) -> np.ndarray:
        return self.forward(logits, target)

    def _target_dist(self, n: int, k: int, target: np.ndarray, dtype) -> np.ndarray:
        # one-hot, mixed with the uniform distribution by label_smoothing (Szegedy et al. 2016 §7)
        q = np.full((n, k), self.label_smoothing / k, dtype=dtype)
        q[np.arange(n), target] += 1 - self.label_smoothing
        return q

    def forward(self, logits: np.ndarray, target: np.ndarray) -> np.ndarray:
        n, k = logits.shape
        target = np.asarray(target)
        logp = log_softmax(logits, axis=1)
        if self.label_smoothing:
            per = -(self._target_dist(n, k, target, logits.dtype) * logp).sum(axis=1)
        else:
            per = -logp[np.arange(n), target]
        self._cache = (logp, target)
        if self.reduction == "none":
            return per
        total = per.sum()
        return total / n if self.reduction == "mean" else total

    def backward(self, grad_out: np.ndarray | float = 1.0) -> np.ndarray:
        logp, target = self._cache
        n, k = logp.shape
        grad = np.exp(logp)  # softmax
        if self.label_smoothing:
            grad -= self._target_dist(n, k, target, logp.dtype)
        else:
            grad[np.arange(n), target] -= 1
        g = np.asarray(grad_out, dtype=logp.dtype)
        if self.reduction == "none":
            return grad * g.reshape(-1, 1)
        if self.reduction == "mean":
            g = g / n
        return grad * g
