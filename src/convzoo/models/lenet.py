"""LeNet: the course slide's network and LeNet-5 (LeCun et al. 1998).

LeCun, Bottou, Bengio, Haffner, "Gradient-based learning applied to document recognition",
Proc. IEEE 1998. The slide's network (``lenet``) takes a 3x32x32 image: conv 3->6 5x5, max-pool 2,
conv 6->16 5x5, max-pool 2, fc 400->120->84->10, ReLU, 62,006 parameters. ``lenet5`` is the same
stack for 1x28x28 MNIST digits, zero-padded inside the model to 32x32 as the paper pads its digits
(§III.A), 61,706 parameters with 10 classes.

Not reproduced from the 1998 paper, on purpose: the partial connection table of C3 (Table I), the
scaled tanh ``1.7159 tanh(2x/3)`` and the trainable coefficients of the subsampling layers, and the
Euclidean RBF output layer. ``activation="tanh"`` with ``pool="avg"`` gives the older *style*
(squashing units, average subsampling) to compare with the modern ReLU + max-pool default.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConvzooError
from ._common import ZooModel
from ._registry import register_model

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}
_POOLS = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}


class LeNet(ZooModel):
    """C1-S2-C3-S4-C5(fc)-F6-output. ``pad`` zero-pads the input on each side first."""

    def __init__(
        self,
        *,
        num_classes: int = 10,
        in_chans: int = 1,
        activation: Literal["relu", "tanh", "sigmoid"] = "relu",
        pool: Literal["max", "avg"] = "max",
        pad: int = 0,
    ) -> None:
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}"
            )
        if pool not in _POOLS:
            raise ValueError(f"pool must be one of {sorted(_POOLS)}, got {pool!r}")
        act, pool_cls = _ACTIVATIONS[activation], _POOLS[pool]
        self.pad = pad
        self.in_chans = in_chans
        self.input_side = 32 - 2 * pad  # the fully connected C5 fixes the input size
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, 6, kernel_size=5),  # C1: (B, 6, 28, 28)
            act(),
            pool_cls(kernel_size=2, stride=2),  # S2: (B, 6, 14, 14)
            nn.Conv2d(6, 16, kernel_size=5),  # C3: (B, 16, 10, 10)
            act(),
            pool_cls(kernel_size=2, stride=2),  # S4: (B, 16, 5, 5)
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),  # (B, 400)
            nn.Linear(16 * 5 * 5, 120),  # C5: a 5x5 conv over a 5x5 map is a fully connected layer
            act(),
            nn.Linear(120, 84),  # F6
            act(),
            nn.Linear(84, num_classes),  # output (a linear layer instead of the paper's RBF units)
        )

    def check_input(self, x: torch.Tensor, *, in_chans: int | None = None) -> None:
        """One size only: the fully connected C5 fixes it."""
        side = self.input_side
        if x.ndim != 4 or x.shape[1] != self.in_chans or x.shape[-2:] != (side, side):
            raise ConvzooError(
                f"model {self.shown_name!r} needs (N, {self.in_chans}, {side}, {side}) inputs (its "
                f"minimum and only size is {side}x{side}), got {tuple(x.shape)}"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        if self.pad:
            x = F.pad(x, (self.pad,) * 4)  # (B, C, 28, 28) -> (B, C, 32, 32), as §III.A
        return self.classifier(self.features(x))


@register_model(family="lenet", paper="LeCun et al. 1998 (course slide)", input_size=(3, 32, 32),
                min_size=32, max_size=32, form="small", default_num_classes=10)
def lenet(
    *,
    num_classes: int = 10,
    in_chans: int = 3,
    activation: Literal["relu", "tanh", "sigmoid"] = "relu",
    pool: Literal["max", "avg"] = "max",
) -> LeNet:
    """The course slide's LeNet on 3x32x32 images (62,006 parameters with 10 classes)."""
    return LeNet(num_classes=num_classes, in_chans=in_chans, activation=activation, pool=pool)


@register_model(family="lenet", paper="LeCun et al. 1998", input_size=(1, 28, 28), min_size=28,
                max_size=28, form="small", default_num_classes=10,
                weights={"mnist": "lenet5-mnist.safetensors"})
def lenet5(
    *,
    num_classes: int = 10,
    in_chans: int = 1,
    activation: Literal["relu", "tanh", "sigmoid"] = "relu",
    pool: Literal["max", "avg"] = "max",
) -> LeNet:
    """LeNet-5 for 1x28x28 digits, padded to 32x32 inside (61,706 parameters with 10 classes)."""
    return LeNet(num_classes=num_classes, in_chans=in_chans, activation=activation, pool=pool,
                 pad=2)
