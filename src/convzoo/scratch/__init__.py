"""convzoo.scratch: every layer of the course in NumPy, forward and backward, and nothing else.

No torch import anywhere in this package: it is the first-principles reference that convzoo's
tests check against PyTorch (float64), and it trains a real LeNet-5 (``convzoo train lenet5
--engine numpy``, see :mod:`convzoo.engine.numpy_engine`).

    >>> import numpy as np
    >>> from convzoo.scratch import Conv2d
    >>> conv = Conv2d(3, 8, 3, padding=1)
    >>> conv(np.zeros((2, 3, 16, 16), np.float32)).shape
    (2, 8, 16, 16)
"""

from .im2col import col2im, conv2d_naive, im2col
from .layers import (
    AdaptiveAvgPool2d,
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv2d,
    Dropout,
    Flatten,
    Linear,
    MaxPool2d,
    ReLU,
    Sigmoid,
    Tanh,
)
from .losses import CrossEntropyLoss, log_softmax
from .models import MODELS, LeNet, create_scratch_model, lenet, lenet5
from .module import Module, Param, Sequential
from .optim import SGD
from .parallel import BatchParallel

__all__ = [
    "im2col", "col2im", "conv2d_naive", "Conv2d", "Linear", "ReLU", "Tanh", "Sigmoid", "Flatten",
    "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "BatchNorm1d", "BatchNorm2d", "Dropout",
    "Sequential", "Module", "Param", "CrossEntropyLoss", "log_softmax", "SGD", "LeNet", "lenet",
    "lenet5", "MODELS", "create_scratch_model", "BatchParallel",
]
