"""NumPy builds of convzoo's torch models, with the same state-dict keys.

``lenet`` / ``lenet5`` mirror :mod:`convzoo.models.lenet` layer for layer, so a weights file
written by either engine loads into the other without renaming::

    features.0.weight (6, C, 5, 5)    features.3.weight (16, 6, 5, 5)
    classifier.1.weight (120, 400)    classifier.3.weight (84, 120)    classifier.5.weight (K, 84)

LeNet-5's zero padding of the 28x28 digit to 32x32 (LeCun et al. 1998 §III.A), done by ``F.pad``
in the torch model, is C1's ``padding=2`` here: the same zeros, without a padded copy.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .layers import AvgPool2d, Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sigmoid, Tanh
from .module import Module, Sequential

_ACTIVATIONS: dict[str, type[Module]] = {"relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid}
_POOLS: dict[str, type[Module]] = {"max": MaxPool2d, "avg": AvgPool2d}


class LeNet(Module):
    """C1-S2-C3-S4-C5(fc)-F6-output, as convzoo.models.lenet.LeNet."""

    def __init__(self, *, num_classes: int = 10, in_chans: int = 1, activation: str = "relu",
                 pool: str = "max", pad: int = 0, dtype=np.float32, seed: int | None = None
                 ) -> None:
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, "
                             f"got {activation!r}")
        if pool not in _POOLS:
            raise ValueError(f"pool must be one of {sorted(_POOLS)}, got {pool!r}")
        act, pool_cls = _ACTIVATIONS[activation], _POOLS[pool]
        rng = np.random.default_rng(seed)
        self.features = self.add_module("features", Sequential(
            # C1: (B, C, 28, 28) -> (B, 6, 28, 28); input_grad=False: nothing below needs dx
            Conv2d(in_chans, 6, 5, padding=pad, dtype=dtype, rng=rng, input_grad=False),
            act(),
            pool_cls(kernel_size=2, stride=2),  # S2: (B, 6, 14, 14)
            Conv2d(6, 16, 5, dtype=dtype, rng=rng),  # C3: (B, 16, 10, 10)
            act(),
            pool_cls(kernel_size=2, stride=2),  # S4: (B, 16, 5, 5)
        ))
        self.classifier = self.add_module("classifier", Sequential(
            Flatten(),  # (B, 400)
            Linear(16 * 5 * 5, 120, dtype=dtype, rng=rng),  # C5
            act(),
            Linear(120, 84, dtype=dtype, rng=rng),  # F6
            act(),
            Linear(84, num_classes, dtype=dtype, rng=rng),  # output
        ))

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.classifier.forward(self.features.forward(x))

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        return self.features.backward(self.classifier.backward(grad_out))


def lenet(*, num_classes: int = 10, in_chans: int = 3, activation: str = "relu",
          pool: str = "max", dtype=np.float32, seed: int | None = None) -> LeNet:
    """The course slide's LeNet on 3x32x32 images (62,006 parameters with 10 classes)."""
    return LeNet(num_classes=num_classes, in_chans=in_chans, activation=activation, pool=pool,
                 dtype=dtype, seed=seed)


def lenet5(*, num_classes: int = 10, in_chans: int = 1, activation: str = "relu",
           pool: str = "max", dtype=np.float32, seed: int | None = None) -> LeNet:
    """LeNet-5 for 1x28x28 digits, zero-padded by C1 to 32x32 (61,706 parameters)."""
    return LeNet(num_classes=num_classes, in_chans=in_chans, activation=activation, pool=pool,
                 pad=2, dtype=dtype, seed=seed)


MODELS: dict[str, Callable[..., Module]] = {"lenet": lenet, "lenet5": lenet5}


def create_scratch_model(name: str, **kwargs) -> Module:
    """The NumPy model registered as ``name`` (see ``MODELS``)."""
    if name not in MODELS:
        raise KeyError(f"no NumPy build of model {name!r}; NumPy models: "
                       f"{', '.join(sorted(MODELS))}")
    return MODELS[name](**kwargs)
