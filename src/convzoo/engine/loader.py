"""The trainer's batch iterator: seeded, sharded across processes, resumable mid-epoch.

Each epoch's order is a permutation drawn from the data-order generator (seeded with ``seed``,
the same on every process); its state at the start of the current epoch is checkpointed, so a
resumed run redraws the same order and starts at the saved batch index. Under DDP each process
takes every ``world``-th index of the (padded) order (see
:func:`~convzoo.engine.distributed.shard_indices`).

The batches come from the one loader of the data package (:func:`convzoo.data.make_loader`), in
memory or streamed, built once; each epoch is ``loader.batches(order, start=..., generator=...)``
with the order generator, from which the loader draws every image's augmentation for the epoch by
its dataset index. So batching, DDP sharding, gradient accumulation and a mid-epoch resume all see
the same augmentation as one uninterrupted single process.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from ..data import DataPreset, make_loader
from .distributed import DistContext, shard_indices


class TrainBatches:
    def __init__(
        self,
        dataset,
        preset: DataPreset,
        *,
        batch_size: int,
        device: torch.device,
        in_chans: int | None,
        seed: int,
        ctx: DistContext,
        channels_last: bool = False,
        workers: int = 4,
    ) -> None:
        self.dataset = dataset
        self.batch_size = batch_size
        self.ctx = ctx
        self.loader = make_loader(dataset, preset, batch_size=batch_size, train=True,
                                  device=device, in_chans=in_chans, seed=seed, workers=workers,
                                  channels_last=channels_last)
        # Checkpointed per process (ckpt.rng_state); the augmentation itself is drawn from the
        # order generator, the same on every process.
        self.generator = torch.Generator().manual_seed(seed + 7919 * ctx.rank)
        self.order_generator = torch.Generator().manual_seed(seed)
        self.epoch_start_state = self.order_generator.get_state()
        self.in_epoch = False
        self.shard_len = len(shard_indices(torch.arange(len(dataset)), ctx, pad=True))

    @property
    def skipped(self) -> list[tuple[str, str]]:
        """Bad files met while training (streamed data with ``on_bad_file="skip"``)."""
        return self.loader.skipped

    def __len__(self) -> int:
        return -(-self.shard_len // self.batch_size)

    def batches(self, epoch: int, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches ``start, start + 1, ...`` of epoch ``epoch`` for this process (the epoch's
        randomness is the order generator's state, checkpointed by :meth:`order_state`)."""
        self.epoch_start_state = self.order_generator.get_state()
        self.in_epoch = True
        perm = torch.randperm(len(self.dataset), generator=self.order_generator)
        order = shard_indices(perm, self.ctx, pad=True)
        return self.loader.batches(order, start=start, generator=self.order_generator)

    def order_state(self) -> torch.Tensor:
        """The data-order generator's state to checkpoint: at the start of the epoch in progress,
        or now between epochs (call :meth:`end_epoch` when an epoch ends)."""
        return self.epoch_start_state if self.in_epoch else self.order_generator.get_state()

    def end_epoch(self) -> None:
        self.in_epoch = False

    def set_order_state(self, state: torch.Tensor) -> None:
        self.order_generator.set_state(state)
