"""Numbers from curves: steps to a threshold, mean ± spread over seeds, smoothing.

Pure functions on plain sequences (no torch), unit-tested on constructed curves
(tests/experiments/test_analysis.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def moving_average(values: Sequence[float], window: int) -> list[float]:
    """Trailing mean over the last ``window`` values (fewer at the start): same length as input.

    Per-step training error is one mini-batch each, so it is noisy; a threshold is judged on this
    average (Krizhevsky et al. 2012, Fig. 1 plots the error of the epoch so far, also a mean).
    Each mean is summed afresh, in order, as the engine's ``--target-train-err`` sums its window:
    a running total would drift by rounding, and a run the engine stopped at exactly the
    threshold would then not have reached it here.
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    values = list(values)
    return [sum(values[max(0, i + 1 - window):i + 1]) / min(i + 1, window)
            for i in range(len(values))]


def steps_to_threshold(xs: Sequence[float], ys: Sequence[float], threshold: float, *,
                       below: bool = True, window: int = 1) -> float | None:
    """The first x at which curve ys (smoothed by a trailing ``window``) crosses ``threshold``.

    ``below=True``: first reaching ``y <= threshold`` (an error falling), else ``y >= threshold``
    (an accuracy rising). Linear interpolation between the two points around the crossing; the
    first point itself when it already satisfies the condition; None when the curve never gets
    there (a censored value: "more than the budget").
    """
    if len(xs) != len(ys):
        raise ValueError(f"xs has {len(xs)} points but ys has {len(ys)}")
    ys_s = moving_average(ys, window) if window > 1 else list(ys)

    def ok(y: float) -> bool:
        return y <= threshold if below else y >= threshold

    for i, (x, y) in enumerate(zip(xs, ys_s, strict=False)):
        if math.isnan(y) or not ok(y):
            continue
        if i == 0:
            return float(x)
        x0, y0 = xs[i - 1], ys_s[i - 1]
        if math.isnan(y0) or y == y0:
            return float(x)
        return float(x0 + (threshold - y0) * (x - x0) / (y - y0))
    return None


def mean_spread(values: Sequence[float | None]) -> tuple[float | None, float | None, int]:
    """(mean, spread, n) of the finite values: spread is the sample standard deviation (n-1).

    ``None``/NaN values (a run that never reached a threshold, or diverged) are left out and
    ``n`` says how many were used; with one value the spread is 0.0, with none (None, None, 0).
    """
    xs = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    n = len(xs)
    if n == 0:
        return None, None, 0
    mean = sum(xs) / n
    if n == 1:
        return mean, 0.0, 1
    var = sum((x - mean) ** 2 for x in xs) / (n - 1)
    return mean, math.sqrt(var), n


def format_mean_spread(values: Sequence[float | None], fmt: str = ".3g", *, scale: float = 1.0,
                       censored: str | None = None) -> str:
    """``"12.3 ± 0.4"`` (``± sample std`` over seeds); ``"12.3"`` for one value.

    Missing values are reported, never hidden: ``"12.3 ± 0.4 (2/3 runs; 1 > budget)"`` when
    ``censored`` names what a None means, and ``"–"`` (or ``"> budget"``) when none is left.
    """
    total = len(values)
    mean, spread, n = mean_spread(values)
    if n == 0:
        return f"> {censored} (all {total})" if censored and total else "–"
    text = f"{mean * scale:{fmt}}"
    if n > 1:
        text += f" ± {spread * scale:{fmt}}"
    if n < total:
        missing = f"; {total - n} > {censored}" if censored else ""
        text += f" ({n}/{total} runs{missing})"
    return text

