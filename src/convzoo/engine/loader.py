"""The trainer's batch iterator: seeded, sharded across processes, resumable mid-epoch.

Each epoch's order is a permutation drawn from the data-order generator (seeded with ``seed``,
the same on every process); its state at the start of the current epoch is checkpointed, so a
resumed run redraws the same order and starts at the saved batch index. Augmentation draws from
a second generator (one per process, also checkpointed). Under DDP each process takes every
``world``-th index of the (padded) order (see :func:`~convzoo.engine.distributed.shard_indices`).

In-memory splits are augmented batch-wise on the device (:func:`convzoo.data.apply_preset`);
streamed folders of large images go through the data package's DataLoader-based
:class:`~convzoo.data.stream.StreamLoader`, one per epoch over this process's shard.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import torch

from ..data import DataPreset, apply_preset
from ..data.presets import draw_crop_flip
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
        self.preset = preset
        self.batch_size = batch_size
        self.device = device
        self.in_chans = in_chans
        self.seed = seed
        self.ctx = ctx
        self.channels_last = channels_last
        self.workers = workers
        self.streamed = preset.streamed
        # One augmentation stream per process; process 0 of a DDP run draws as a lone process.
        self.generator = torch.Generator().manual_seed(seed + 7919 * ctx.rank)
        self.order_generator = torch.Generator().manual_seed(seed)
        self.epoch_start_state = self.order_generator.get_state()
        self.in_epoch = False
        self.skipped: list = []
        if not self.streamed:
            self.images = dataset.images.to(device)
            self.labels = dataset.labels.to(device)
        n = len(dataset)
        self.shard_len = len(shard_indices(torch.arange(n), ctx, pad=True))

    def __len__(self) -> int:
        return -(-self.shard_len // self.batch_size)

    def batches(self, epoch: int, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches ``start, start + 1, ...`` of epoch ``epoch`` for this process."""
        self.epoch_start_state = self.order_generator.get_state()
        self.in_epoch = True
        perm = torch.randperm(len(self.dataset), generator=self.order_generator)
        order = shard_indices(perm, self.ctx, pad=True)
        if self.streamed:
            yield from self._streamed(order, epoch, start)
            return
        # Crop/flip per sample for this epoch, from the same (epoch-start checkpointed, rank
        # independent) generator as the order: batching, DDP sharding, gradient accumulation and
        # mid-epoch resume all see the same augmentation as one uninterrupted single process.
        aug = draw_crop_flip(len(self.dataset), self.preset.crop_padding, self.preset.hflip,
                             self.order_generator)
        aug = tuple(t.to(self.device) for t in aug)
        order = order.to(self.device)
        b = self.batch_size
        for i in range(start, len(self)):
            idx = order[i * b : (i + 1) * b]
            x = apply_preset(
                self.images[idx],
                self.preset,
                train=True,
                in_chans=self.in_chans,
                aug=tuple(t[idx] for t in aug),
            )
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self.labels[idx]

    def order_state(self) -> torch.Tensor:
        """The data-order generator's state to checkpoint: at the start of the epoch in progress,
        or now between epochs (call :meth:`end_epoch` when an epoch ends)."""
        return self.epoch_start_state if self.in_epoch else self.order_generator.get_state()

    def end_epoch(self) -> None:
        self.in_epoch = False

    def set_order_state(self, state: torch.Tensor) -> None:
        self.order_generator.set_state(state)

    def _streamed(self, order: torch.Tensor, epoch: int, start: int):
        from ..data.stream import StreamLoader

        # The shard in our order; the DataLoader must not reshuffle it, so it is built with
        # train=True for the augmentation and its sampler replaced by the identity order.
        loader = StreamLoader(
            self.dataset.subset(order),
            self.preset,
            batch_size=self.batch_size,
            train=True,
            device=self.device,
            in_chans=self.in_chans,
            seed=self.seed * 1_000_003 + epoch + 7919 * self.ctx.rank,
            workers=self.workers,
            channels_last=self.channels_last,
        )
        loader.loader = torch.utils.data.DataLoader(
            loader.dataset,
            batch_size=self.batch_size,
            shuffle=False,
            num_workers=loader.loader.num_workers,
            collate_fn=loader.loader.collate_fn,
            generator=loader.generator,
            pin_memory=self.device.type == "cuda",
        )
        try:
            yield from itertools.islice(iter(loader), start, None)
        finally:
            self.skipped.extend(loader.skipped)
