"""Importing this module registers every experiment; ORDER is the order `--list` shows them in."""

from . import (  # noqa: F401
    architectures,
    batchnorm,
    degradation,
    dropout,
    im2col,
    lenet_modern,
    relu_tanh,
)

ORDER = ("relu-vs-tanh", "lenet-1998-vs-modern", "batchnorm", "im2col", "dropout", "degradation",
         "architectures")
