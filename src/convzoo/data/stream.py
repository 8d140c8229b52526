"""The DataLoader path for folders of large images (ImageNet and the like).

Per sample, in worker processes: decode (torchvision.io), then the geometric part of the preset
with torchvision.transforms.v2 on uint8 tensors -- train: RandomResizedCrop (or VGG's scale jitter
+ random crop) + horizontal flip; eval: resize the shorter side + center crop. Per batch, on the
training device: float conversion, AlexNet lighting noise, normalisation
(:func:`~convzoo.data.presets.finish_batch`). Batches are pinned when the device is CUDA and can be
made channels_last.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torchvision.transforms import v2

from .folder import FolderDataset, Skipped
from .presets import DataPreset, finish_batch

_INTERP = {"bilinear": v2.InterpolationMode.BILINEAR, "bicubic": v2.InterpolationMode.BICUBIC}


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


class StreamLoader:
    """Yields ``(x, y)`` normalised float batches on ``device`` from a :class:`FolderDataset`.

    Bad files met on the way (with ``on_bad_file="skip"``) are appended to ``self.skipped``.
    """

    def __init__(self, dataset: FolderDataset, preset: DataPreset, *, batch_size: int,
                 train: bool, device: torch.device | str = "cpu", in_chans: int | None = None,
                 seed: int = 0, drop_last: bool = False, workers: int = 4,
                 channels_last: bool = False, prefetch_factor: int = 4) -> None:
        self.dataset = dataset.with_transform(stream_transform(preset, train=train))
        self.preset = preset
        self.train = train
        self.device = torch.device(device)
        self.in_chans = in_chans
        self.channels_last = channels_last
        self.generator = torch.Generator().manual_seed(seed)
        self.skipped: Skipped = []
        self.batch_size = batch_size
        self.loader = torch.utils.data.DataLoader(
            self.dataset, batch_size=batch_size, shuffle=train, drop_last=drop_last,
            num_workers=workers, collate_fn=_Collate(), generator=self.generator,
            pin_memory=self.device.type == "cuda", persistent_workers=workers > 0,
            prefetch_factor=prefetch_factor if workers > 0 else None,
        )

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for x, y, skipped in self.loader:
            self.skipped.extend(skipped)
            if len(y) == 0:
                continue
            x = x.to(self.device, non_blocking=True)
            y = y.to(self.device, non_blocking=True)
            yield finish_batch(x, self.preset, train=self.train, generator=self.generator,
                               in_chans=self.in_chans, channels_last=self.channels_last), y
