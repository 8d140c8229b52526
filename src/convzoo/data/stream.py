"""The DataLoader path for folders of large images (ImageNet and the like).

Per sample, in worker processes: decode (torchvision.io), then the geometric part of the preset
with torchvision.transforms.v2 on uint8 tensors -- train: RandomResizedCrop (or VGG's scale jitter
+ random crop) + horizontal flip; eval: resize the shorter side + center crop. Per batch, on the
training device: float conversion, AlexNet lighting noise, normalisation
(:func:`~convzoo.data.presets.finish_batch`). Batches are pinned when the device is CUDA and can be
made channels_last.

The random crop and flip of an image are seeded by the pass's seed and the image's dataset index,
not by the worker's random state: the same image gets the same augmentation in a pass whatever the
number of workers, the batching, the DDP sharding, or a resume mid-way (which then skips the
batches already done without decoding them). So one DataLoader, with persistent workers, serves
every pass.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import torch
from torchvision.transforms import v2

from .folder import FolderDataset, Skipped
from .loader import PassLoader
from .presets import DataPreset, finish_batch

_INTERP = {"bilinear": v2.InterpolationMode.BILINEAR, "bicubic": v2.InterpolationMode.BICUBIC}
_MASK64 = (1 << 64) - 1


def sample_seed(pass_seed: int, index: int) -> int:
    """A 32-bit seed for item ``index`` of the pass seeded ``pass_seed`` (splitmix64 of both).

    torch's CPU generator keeps only the low 32 bits of a seed, so the two numbers are mixed
    rather than packed side by side.
    """
    z = (pass_seed * 0x9E3779B97F4A7C15 + index + 0x632BE59BD9B4E019) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return (z ^ (z >> 31)) >> 32


def stream_transform(preset: DataPreset, *, train: bool) -> v2.Compose:
    """The per-sample uint8 -> uint8 (C, crop, crop) transform of a streamed preset."""
    if preset.crop_size is None:
        raise ValueError("stream_transform needs a streamed preset (crop_size set)")
    interp = _INTERP[preset.interpolation]
    crop = preset.crop_size
    if not train:
        return v2.Compose([v2.Resize(preset.resize_size or crop, interpolation=interp,
                                     antialias=True), v2.CenterCrop(crop)])
    if preset.scale_jitter is not None:  # VGG Sec. 3.1: isotropic rescale to S ~ U[S_min, S_max]
        lo, hi = preset.scale_jitter
        ops = [v2.RandomShortestSize(list(range(lo, hi + 1)), interpolation=interp,
                                     antialias=True), v2.RandomCrop(crop, pad_if_needed=True)]
    elif preset.crop_padding:  # small inputs: the whole image, shifted as CIFAR's (He 2016 4.2)
        fill = [round(m * 255) for m in preset.mean]
        ops = [v2.Resize(preset.resize_size or crop, interpolation=interp, antialias=True),
               v2.CenterCrop(crop), v2.RandomCrop(crop, padding=preset.crop_padding, fill=fill)]
    else:
        ops = [v2.RandomResizedCrop(crop, scale=preset.rrc_scale, interpolation=interp,
                                    antialias=True)]
    if preset.hflip:
        ops.append(v2.RandomHorizontalFlip())
    return v2.Compose(ops)


def _cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class _Samples(torch.utils.data.Dataset):
    """``dataset[(pass_seed, i)]``: image ``i`` decoded and transformed, the transform's
    randomness drawn from torch's RNG seeded with :func:`sample_seed` of both (in a worker: its
    own RNG; in the main process the caller's RNG state is restored after)."""

    def __init__(self, dataset: FolderDataset, transform: v2.Compose, *, random: bool) -> None:
        self.dataset = dataset.with_transform(None)
        self.transform = transform
        self.random = random

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]):  # noqa: ANN204 - as FolderDataset.__getitem__
        pass_seed, i = key
        item = self.dataset[i]
        if item[0] is None:
            return item
        if not self.random:
            return self.transform(item[0]), item[1]
        if torch.utils.data.get_worker_info() is not None:
            torch.manual_seed(sample_seed(pass_seed, i))
            return self.transform(item[0]), item[1]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(sample_seed(pass_seed, i))
            return self.transform(item[0]), item[1]


class _Keys(torch.utils.data.Sampler):
    """The DataLoader's sampler: ``(seed, index)`` keys of the pass in progress, set per pass."""

    def __init__(self, keys: list[tuple[int, int]]) -> None:
        self.keys = keys

    def __len__(self) -> int:
        return len(self.keys)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(self.keys)


class _Collate:
    """Stack good samples; carry the skipped ones' (path, reason) out to the main process."""

    def __call__(self, batch: list) -> tuple[torch.Tensor, torch.Tensor, Skipped]:
        good = [b for b in batch if b[0] is not None]
        skipped = [b[2] for b in batch if b[0] is None]
        if not good:
            return torch.empty(0, dtype=torch.uint8), torch.empty(0, dtype=torch.int64), skipped
        x = torch.stack([b[0] for b in good])
        y = torch.tensor([b[1] for b in good], dtype=torch.int64)
        return x, y, skipped


class StreamLoader(PassLoader):
    """Yields ``(x, y)`` normalised float batches on ``device`` from a :class:`FolderDataset`.

    Iterating gives one pass (see :class:`~convzoo.data.loader.PassLoader`); :meth:`batches`
    takes a fixed order. Build it with :func:`convzoo.data.make_loader`. Bad files
    met on the way (with ``on_bad_file="skip"``) are appended to ``self.skipped``. ``workers`` is
    capped at the CPUs this process may use.
    """

    def __init__(self, dataset: FolderDataset, preset: DataPreset, *, batch_size: int,
                 train: bool, device: torch.device | str = "cpu", in_chans: int | None = None,
                 seed: int = 0, drop_last: bool = False, workers: int = 4,
                 channels_last: bool = False, prefetch_factor: int = 4) -> None:
        self.dataset = dataset
        self.preset = preset
        self.train = train
        self.device = torch.device(device)
        self.in_chans = in_chans
        self.channels_last = channels_last
        self.generator = torch.Generator().manual_seed(seed)
        self.skipped: Skipped = []
        self.batch_size = batch_size
        self.drop_last = drop_last
        self._keys = _Keys([(0, i) for i in range(len(dataset))])
        # More decoding processes than CPUs only adds switching (and torch's warning).
        workers = min(workers, _cpu_count())
        self.loader = torch.utils.data.DataLoader(
            _Samples(dataset, stream_transform(preset, train=train), random=train),
            batch_size=batch_size, sampler=self._keys, drop_last=drop_last,
            num_workers=workers, collate_fn=_Collate(),
            # The workers' base seed is drawn from this, not from the caller's global RNG.
            generator=torch.Generator().manual_seed(seed),
            pin_memory=self.device.type == "cuda", persistent_workers=workers > 0,
            prefetch_factor=prefetch_factor if workers > 0 else None,
        )

    def batches(self, order: torch.Tensor, *, start: int = 0,
                generator: torch.Generator | None = None
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches ``start, start + 1, ...`` over the dataset indices ``order`` (which may repeat
        indices, e.g. a DDP shard padded to equal length); the batches before ``start`` are not
        decoded.

        When training, the pass's seed is drawn from ``generator`` (default: the loader's); each
        image's crop and flip are seeded by it and the image's dataset index, and batch ``i``'s
        lighting noise by it and ``i``.
        """
        seed = 0
        if self.train:
            seed = int(torch.randint(2**31, (), generator=generator or self.generator))
        b = self.batch_size
        rest = order[start * b:].tolist()
        self._keys.keys = [(seed, i) for i in rest]
        for i, (x, y, skipped) in enumerate(self.loader, start):
            self.skipped.extend(skipped)
            if len(y) == 0:
                continue
            x = x.to(self.device, non_blocking=True)
            y = y.to(self.device, non_blocking=True)
            light = None
            if self.train and self.preset.lighting:
                light = torch.Generator().manual_seed(sample_seed(seed, -1 - i))
            yield finish_batch(x, self.preset, train=self.train, generator=light,
                               in_chans=self.in_chans, channels_last=self.channels_last), y
