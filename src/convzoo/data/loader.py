"""Batches of an in-memory :class:`ImageDataset`, shuffled by a seeded generator."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from .datasets import ImageDataset
from .presets import DataPreset, apply_preset


class BatchLoader:
    """Yields ``(x, y)`` float/int64 batches on ``device``; augmentation is batch-wise.

    The whole split is moved to ``device`` once as uint8 (MNIST: 47 MB), so an epoch is only
    index selection and a few tensor ops per batch.
    """

    def __init__(
        self,
        dataset: ImageDataset,
        preset: DataPreset,
        *,
        batch_size: int,
        train: bool,
        device: torch.device | str = "cpu",
        in_chans: int | None = None,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        self.dataset = dataset
        self.preset = preset
        self.batch_size = batch_size
        self.train = train
        self.device = torch.device(device)
        self.in_chans = in_chans
        self.drop_last = drop_last
        self.generator = torch.Generator().manual_seed(seed)
        self.images = dataset.images.to(self.device)
        self.labels = dataset.labels.to(self.device)

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.dataset)
        if self.train:
            order = torch.randperm(n, generator=self.generator).to(self.device)
        else:
            order = torch.arange(n, device=self.device)
        for i in range(len(self)):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            x = apply_preset(self.images[idx], self.preset, train=self.train,
                             generator=self.generator, in_chans=self.in_chans)
            yield x, self.labels[idx]
