"""The NumPy ``Module``: parameters, their gradients and buffers in dicts keyed like torch.

A layer computes ``forward(x)``, keeps what its backward needs, and ``backward(grad_out)`` writes
the gradient of the loss with respect to each parameter into ``grads`` (replacing it: one backward
per step, unlike torch's accumulation) and returns the gradient with respect to its input.
``state_dict()`` joins child names with dots, so a NumPy LeNet's keys are those of the torch one
(``features.0.weight``, ``classifier.1.bias``, ...) and weights move between them unrenamed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Param:
    """A handle on one learned array: the optimizer reads ``value`` and ``grad`` through it."""

    owner: Module
    key: str  # "weight" or "bias"
    name: str  # full state-dict name, e.g. "features.0.weight"

    @property
    def value(self) -> np.ndarray:
        return self.owner.params[self.key]

    @property
    def grad(self) -> np.ndarray | None:
        return self.owner.grads.get(self.key)


class Module:
    """Base class: ``params``/``grads``/``buffers`` dicts, a ``training`` flag, named children."""

    def __init__(self) -> None:
        self.training = True
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}
        self._children: dict[str, Module] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        raise NotImplementedError

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def add_module(self, name: str, module: Module) -> Module:
        self._children[name] = module
        return module

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        yield prefix, self
        for name, child in self._children.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def parameters(self) -> list[Param]:
        return [Param(m, k, f"{p}.{k}" if p else k)
                for p, m in self.named_modules() for k in m.params]

    def state_dict(self) -> dict[str, np.ndarray]:
        """Parameters then buffers of every module, each under its dotted torch name."""
        out: dict[str, np.ndarray] = {}
        for prefix, m in self.named_modules():
            for k, v in {**m.params, **m.buffers}.items():
                out[f"{prefix}.{k}" if prefix else k] = v
        return out

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy ``state`` into the arrays in place (keeping their dtype); keys must match."""
        own = self.state_dict()
        missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
        if missing or unexpected:
            raise KeyError(f"state dict mismatch: missing {missing[:3]}, "
                           f"unexpected {unexpected[:3]}")
        for key, dst in own.items():
            src = np.asarray(state[key])
            if src.shape != dst.shape:
                raise ValueError(f"{key}: shape {src.shape} does not match {dst.shape}")
            dst[...] = src

    def train(self, mode: bool = True) -> Module:
        for _, m in self.named_modules():
            m.training = mode
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self) -> None:
        for _, m in self.named_modules():
            m.grads = {k: np.zeros_like(v) for k, v in m.params.items()}

    def astype(self, dtype: np.dtype | type) -> Module:
        """Cast every floating parameter and buffer to ``dtype`` (float32 or float64), in place."""
        for _, m in self.named_modules():
            m.params = {k: v.astype(dtype) for k, v in m.params.items()}
            m.buffers = {k: v.astype(dtype) if v.dtype.kind == "f" else v
                         for k, v in m.buffers.items()}
            m.grads = {}
        return self


class Sequential(Module):
    """Children ``"0"``, ``"1"``, ... applied in order; backward runs them in reverse."""

    def __init__(self, *layers: Module) -> None:
        super().__init__()
        for i, layer in enumerate(layers):
            self.add_module(str(i), layer)

    def __getitem__(self, i: int) -> Module:
        return list(self._children.values())[i]

    def __len__(self) -> int:
        return len(self._children)

    def forward(self, x: np.ndarray) -> np.ndarray:
        for layer in self._children.values():
            x = layer.forward(x)
        return x

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        for layer in reversed(self._children.values()):
            grad_out = layer.backward(grad_out)
            if grad_out is None:  # a first layer told not to compute its input gradient
                return None
        return grad_out
