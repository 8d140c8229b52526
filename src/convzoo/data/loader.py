"""Batches of an in-memory :class:`ImageDataset`, augmented batch-wise on the device, and the pass
interface that it and the streamed loader (:mod:`.stream`) share.

Build either with :func:`convzoo.data.make_loader` (the one loader for both kinds of data set).
"""

from __future__ import annotations

from collections.abc import Iterator, Sized

import torch

from .datasets import ImageDataset
from .presets import DataPreset, apply_preset, draw_crop_flip


class PassLoader:
    """What both loaders share: iterating gives one pass over the data set, shuffled by the
    loader's seeded generator when ``train``, in order otherwise; :meth:`batches` is a pass over
    a fixed order."""

    dataset: Sized  # an ImageDataset or a FolderDataset
    batch_size: int
    drop_last: bool
    train: bool
    generator: torch.Generator

    def __len__(self) -> int:
        return self._n_batches(len(self.dataset))

    def _n_batches(self, n: int) -> int:
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.dataset)
        order = torch.randperm(n, generator=self.generator) if self.train else torch.arange(n)
        return self.batches(order, generator=self.generator)

    def batches(self, order: torch.Tensor, *, start: int = 0,
                generator: torch.Generator | None = None
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        raise NotImplementedError


class BatchLoader(PassLoader):
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
        channels_last: bool = False,
    ) -> None:
        self.dataset = dataset
        self.preset = preset
        self.batch_size = batch_size
        self.train = train
        self.device = torch.device(device)
        self.in_chans = in_chans
        self.drop_last = drop_last
        self.channels_last = channels_last
        self.generator = torch.Generator().manual_seed(seed)
        self.images = dataset.images.to(self.device)
        self.labels = dataset.labels.to(self.device)
        self.skipped: list[tuple[str, str]] = []  # in-memory data: bad files were left out on load

    def batches(self, order: torch.Tensor, *, start: int = 0,
                generator: torch.Generator | None = None
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches ``start, start + 1, ...`` over the dataset indices ``order`` (which may repeat
        indices, e.g. a DDP shard padded to equal length).

        When training, the random crop and flip of every image are drawn up front from
        ``generator`` (default: the loader's), indexed by the image's dataset index: how the
        order is batched, sharded across processes or resumed mid-way does not change them.
        """
        aug = None
        if self.train and (self.preset.crop_padding or self.preset.hflip):
            aug = draw_crop_flip(len(self.dataset), self.preset.crop_padding, self.preset.hflip,
                                 generator or self.generator)
            aug = tuple(t.to(self.device) for t in aug)
        order = order.to(self.device)
        b = self.batch_size
        for i in range(start, self._n_batches(len(order))):
            idx = order[i * b:(i + 1) * b]
            x = apply_preset(self.images[idx], self.preset, train=self.train,
                             in_chans=self.in_chans,
                             aug=None if aug is None else tuple(t[idx] for t in aug))
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self.labels[idx]
