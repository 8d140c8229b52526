"""Verdicts as data: the words an experiment's page may use, and the arithmetic they rest on.

Every experiment module has a pure ``judge(...) -> Verdict`` on plain numbers (means and spreads
over seeds per arm, as :class:`Stat`), unit-tested on constructed measurements
(tests/experiments/test_judges.py); the training that feeds it is plumbing. A verdict is scoped to
the set-up it was measured on, and two rules hold throughout:

- a difference within the seeds' spread (:func:`compare`) is ``inconclusive``, never
  ``disagrees``;
- an arm whose error is at chance did not train, so a claim comparing it is ``not comparable``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .analysis import mean_spread

AGREES = "agrees"
PARTLY = "partly"
DISAGREES = "disagrees"
INCONCLUSIVE = "inconclusive"  # the arms differ by less than the seeds' spread
NOT_COMPARABLE = "not comparable"  # an arm did not train, or the set-up cannot test the claim
NOT_TESTABLE = "not testable on this machine"  # the claim needs a budget this machine lacks
VERDICTS = (AGREES, PARTLY, DISAGREES, INCONCLUSIVE, NOT_COMPARABLE, NOT_TESTABLE)


@dataclass(frozen=True)
class Verdict:
    """One word from :data:`VERDICTS` and one sentence saying why, scoped to the set-up."""

    word: str
    reason: str

    def __post_init__(self) -> None:
        if self.word not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.word!r}")


@dataclass(frozen=True)
class Stat:
    """One arm's measurement over seeds: mean and sample std of the ``n`` finite values out of
    ``total`` runs (the others censored: never reached a threshold, or diverged)."""

    mean: float | None
    spread: float = 0.0
    n: int = 1
    total: int = 1

    @classmethod
    def of(cls, values: Sequence[float | None]) -> Stat:
        m, s, n = mean_spread(values)
        return cls(m, s or 0.0, n, len(values))

    @property
    def complete(self) -> bool:
        """Every run gave a value."""
        return self.mean is not None and self.n == self.total


def compare(a: Stat, b: Stat, *, floor: float = 0.0) -> int:
    """+1 if ``b`` is clearly larger than ``a``, -1 if clearly smaller, 0 for a tie: the means
    must differ by more than ``floor`` and by more than twice the standard error of their
    difference (the seeds' spreads combined; one seed each: ``floor`` alone)."""
    if a.mean is None or b.mean is None:
        return 0
    diff = b.mean - a.mean
    se = math.sqrt(a.spread ** 2 / max(a.n, 1) + b.spread ** 2 / max(b.n, 1))
    if abs(diff) <= max(floor, 2 * se):
        return 0
    return 1 if diff > 0 else -1


def at_chance(err: float | None, classes: int = 10, *, margin: float = 0.05) -> bool:
    """An error rate (fraction) within ``margin`` of guessing among ``classes`` (or a run that
    gave no number: diverged)."""
    return err is None or err >= 1.0 - 1.0 / classes - margin


def combine(parts: Sequence[tuple[str, Verdict]]) -> Verdict:
    """One verdict from the verdicts of several set-ups or parts, each named in the reason
    (``"cuda-convnet set-up: agrees – ...; modern set-up: inconclusive – ..."``): the common word
    when all agree on one, else ``partly`` if any part agrees, else the first part's word."""
    words = [v.word for _, v in parts]
    if len(set(words)) == 1:
        word = words[0]
    elif AGREES in words:
        word = PARTLY
    else:
        testable = [w for w in words if w not in (NOT_COMPARABLE, NOT_TESTABLE)]
        word = testable[0] if testable else words[0]
    reason = "; ".join(f"{name}: {v.word} – {v.reason.rstrip('.')}" for name, v in parts)
    return Verdict(word, reason + ".")
