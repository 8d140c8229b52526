"""Stochastic gradient descent with torch.optim.SGD's exact update rule."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .module import Param


class SGD:
    """For each parameter p with gradient g, in this order (torch.optim.SGD's documented rule)::

        g = g + weight_decay * p                      (L2 penalty, through the gradient)
        b = g                          at the first step, else  b = momentum * b + (1 - dampening) g
        g = g + momentum * b           if nesterov, else  g = b
        p = p - lr * g

    ``lr`` is a plain attribute: a schedule sets it before each :meth:`step`.
    """

    def __init__(self, params: Iterable[Param], lr: float, momentum: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, dampening: float = 0.0
                 ) -> None:
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"lr, momentum and weight_decay must be >= 0, got {lr}, {momentum}, "
                             f"{weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("nesterov momentum requires a momentum and zero dampening")
        self.params = list(params)
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.nesterov, self.dampening = nesterov, dampening
        self.momentum_buffer: dict[int, np.ndarray] = {}

    def zero_grad(self) -> None:
        for p in self.params:
            p.owner.grads.pop(p.key, None)

    def step(self) -> None:
        for i, p in enumerate(self.params):
            g = p.grad
            if g is None:  # no gradient this step (torch skips such parameters too)
                continue
            w = p.value
            dtype = w.dtype.type
            if self.weight_decay:
                g = g + dtype(self.weight_decay) * w
            if self.momentum:
                buf = self.momentum_buffer.get(i)
                if buf is None:
                    buf = self.momentum_buffer[i] = np.array(g, dtype=w.dtype, copy=True)
                else:
                    buf *= dtype(self.momentum)
                    buf += dtype(1 - self.dampening) * g
                g = g + dtype(self.momentum) * buf if self.nesterov else buf
            w -= dtype(self.lr) * g  # in place: the layer sees the new value
