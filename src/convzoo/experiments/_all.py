"""Every experiment: importing this module registers each one; ORDER is the order `--list` shows
them in; :func:`list_experiments` and :func:`get_experiment` look them up."""

from __future__ import annotations

import difflib

from ..errors import ConvzooError
from . import (  # noqa: F401  (importing a module registers its experiment)
    architectures,
    batchnorm,
    degradation,
    dropout,
    im2col,
    lenet_modern,
    relu_tanh,
)
from ._registry import _EXPERIMENTS, Experiment

ORDER = ("relu-vs-tanh", "lenet-1998-vs-modern", "batchnorm", "im2col", "dropout", "degradation",
         "architectures")


def list_experiments() -> list[Experiment]:
    """Every registered experiment, in ORDER (any other after them)."""
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(_EXPERIMENTS.values(), key=lambda e: rank.get(e.name, len(rank)))


def get_experiment(name: str) -> Experiment:
    """The experiment registered as ``name``; an unknown name fails with the close ones."""
    names = [e.name for e in list_experiments()]
    if name not in _EXPERIMENTS:
        close = difflib.get_close_matches(name, names, n=2, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConvzooError(f"unknown experiment {name!r}{hint}; expected one of "
                           f"{', '.join(names)} (see `convzoo experiment --list`)")
    return _EXPERIMENTS[name]
