"""Data parallelism over a CPU's cores: the batch cut into slices, one thread per slice.

NumPy releases the GIL inside its large operations (the im2col copy, ufuncs, reductions, matmul),
so threads that run the same network on different slices of a batch compute at the same time.
This is ``torch.nn.DataParallel``'s scheme with CPU threads for GPUs: each thread owns a replica
of the network that shares the parameter arrays but keeps its own caches and gradients, and the
slices' gradients are summed, which is the batch's gradient because the loss is a sum (or mean,
the 1/N already in ``dL/dlogits``) over samples.

BLAS runs single-threaded meanwhile (``threadpoolctl``): the slices are the parallelism. An
OpenBLAS pool of its own under each GEMM spin-waits for cores that the other slice holds, which
made LeNet-5's thin GEMMs several times slower, not faster (docs/im2col.md).

    >>> from convzoo.scratch import lenet5
    >>> net = lenet5(seed=0)
    >>> step = BatchParallel(net, threads=2)   # forward/backward as net's; net gets the gradients
"""

from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from functools import lru_cache

import numpy as np
from threadpoolctl import ThreadpoolController

from .layers import Dropout, _BatchNorm
from .module import Module


@lru_cache(maxsize=1)
def _controller() -> ThreadpoolController:
    return ThreadpoolController()  # finds the loaded BLAS libraries once (a scan of the process)


def single_threaded_blas() -> AbstractContextManager:
    """A context in which NumPy's BLAS computes on the calling thread only."""
    return _controller().limit(limits=1, user_api="blas")


def replicate(net: Module) -> Module:
    """A copy of ``net`` sharing its ``params`` and ``buffers`` (the same dicts and arrays, so an
    optimizer step is seen by both) with its own ``grads`` and its own forward caches."""
    rep = copy.copy(net)  # shallow: the dicts are shared until replaced below
    rep.grads = {}
    rep._children = {name: replicate(child) for name, child in net._children.items()}
    # Attributes naming a child (LeNet.features) must name the replica's child.
    by_id = {id(child): rep._children[name] for name, child in net._children.items()}
    for attr, value in vars(net).items():
        if attr != "_children" and id(value) in by_id:
            setattr(rep, attr, by_id[id(value)])
    return rep


class BatchParallel:
    """Run ``net``'s forward and backward on ``threads`` slices of the batch at once.

    ``forward(x)`` returns the whole batch's output, ``backward(grad_out)`` leaves the whole
    batch's parameter gradients in ``net``'s ``grads`` (so an optimizer built on
    ``net.parameters()`` steps as after ``net.backward``) and returns dL/dx. The results equal
    ``net``'s up to the order of the float additions. Not a Module: it holds no parameters, and
    ``net`` stays the one to train, evaluate and save. ``threads=1`` is ``net`` itself with BLAS
    on one thread; a batch smaller than ``threads`` is cut into fewer slices.

    Layers that need the whole batch at once are refused in training mode: BatchNorm (its
    statistics are the batch's) and Dropout (its draws would depend on the threads' timing).
    """

    def __init__(self, net: Module, threads: int) -> None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.net, self.threads = net, threads
        # Replica 0 is net itself (the calling thread runs it); the others run in the pool.
        self.replicas = [net] + [replicate(net) for _ in range(threads - 1)]
        self._pool = ThreadPoolExecutor(threads - 1) if threads > 1 else None
        self._pairs = [list(zip((m for _, m in net.named_modules()),
                                (m for _, m in r.named_modules()), strict=True))
                       for r in self.replicas[1:]]
        self._cuts: list[int] = []

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def _run(self, method: str, chunks: list[np.ndarray]) -> list:
        """``replica.method(chunk)`` for each slice, the first on this thread, BLAS on one."""
        with single_threaded_blas():
            # A batch smaller than `threads` leaves the last replicas idle: strict=False.
            futures = [self._pool.submit(getattr(r, method), c)
                       for r, c in zip(self.replicas[1:], chunks[1:], strict=False)]
            first = getattr(self.net, method)(chunks[0])
            return [first] + [f.result() for f in futures]

    def forward(self, x: np.ndarray) -> np.ndarray:
        k = min(self.threads, len(x))
        self._cuts = [len(x) * i // k for i in range(1, k)]  # slice boundaries along N
        if k > 1:
            for pairs in self._pairs:  # the replicas follow net's train/eval mode
                for mine, theirs in pairs:
                    theirs.training = mine.training
            self._check_mode()
        outs = self._run("forward", np.split(x, self._cuts))
        return outs[0] if k == 1 else np.concatenate(outs)

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        dxs = self._run("backward", np.split(grad_out, self._cuts))
        # Sum the slices' gradients into net's (replica 0's), parameter by parameter.
        for pairs in self._pairs[:len(self._cuts)]:
            for mine, theirs in pairs:
                for key, g in theirs.grads.items():
                    mine.grads[key] += g
        if dxs[0] is None:
            return None
        return dxs[0] if len(dxs) == 1 else np.concatenate(dxs)

    def _check_mode(self) -> None:
        for name, m in self.net.named_modules():
            if m.training and isinstance(m, (_BatchNorm, Dropout)):
                raise ValueError(f"BatchParallel cannot train {name} ({type(m).__name__}): it "
                                 f"needs the whole batch in one thread; use threads=1")

    def close(self) -> None:
        """Stop the worker threads."""
        if self._pool is not None:
            self._pool.shutdown()
