"""Per-data-set presets (normalisation, augmentation) and the batch-wise transform.

All of it runs on whole batches of uint8 images on the training device: no per-sample Python.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class DataPreset:
    """How a batch of uint8 images becomes the model's float input."""

    mean: tuple[float, ...]  # per channel, in [0, 1] units
    std: tuple[float, ...]
    crop_padding: int = 0  # train: zero-pad by this many pixels, then random-crop back (pixels)
    hflip: bool = False  # train: random horizontal flip with probability 0.5
    pad_to: int | None = None  # pad (H, W) symmetrically to this size, e.g. 28 -> 32 for `lenet`

    def to_dict(self) -> dict:
        return asdict(self)


# Widely used constants (../shared/REFERENCES.md, "Normalisation constants").
PRESETS: dict[str, DataPreset] = {
    "mnist": DataPreset(mean=(0.1307,), std=(0.3081,)),
}


def preset_for(data: str, *, in_chans: int, image_size: int, model_size: int | None
               ) -> DataPreset:
    """The preset of data set ``data``, adapted to the model's channels and input size."""
    base = PRESETS.get(data, DataPreset(mean=(0.5,), std=(0.5,)))
    mean, std = base.mean, base.std
    if len(mean) != in_chans:  # e.g. a 1-channel preset feeding a model built for 3 channels
        mean, std = (sum(mean) / len(mean),) * in_chans, (sum(std) / len(std),) * in_chans
    pad_to = model_size if model_size is not None and model_size > image_size else None
    return DataPreset(mean=mean, std=std, crop_padding=base.crop_padding, hflip=base.hflip,
                      pad_to=pad_to)


def apply_preset(
    images: torch.Tensor,
    preset: DataPreset,
    *,
    train: bool,
    generator: torch.Generator | None = None,
    in_chans: int | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """uint8 (B, C, H, W) -> normalised float (B, C', H', W'), augmented when ``train``."""
    x = images.to(dtype).div_(255.0)
    if in_chans is not None and x.shape[1] != in_chans:
        if x.shape[1] == 1:
            x = x.expand(-1, in_chans, -1, -1)  # grey -> RGB by repetition
        else:
            raise ValueError(f"cannot feed {x.shape[1]}-channel images to a {in_chans}-channel model")
    mean = torch.tensor(preset.mean, dtype=dtype, device=x.device).view(1, -1, 1, 1)
    std = torch.tensor(preset.std, dtype=dtype, device=x.device).view(1, -1, 1, 1)
    x = (x - mean) / std  # zero padding below then means "the mean pixel"
    if preset.pad_to is not None:
        h, w = x.shape[-2:]
        dh, dw = preset.pad_to - h, preset.pad_to - w
        x = F.pad(x, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2))
    if train and preset.crop_padding:
        x = random_crop(x, preset.crop_padding, generator)
    if train and preset.hflip:
        flip = torch.rand(x.shape[0], generator=generator, device="cpu") < 0.5
        x = torch.where(flip.to(x.device).view(-1, 1, 1, 1), x.flip(-1), x)
    return x


def random_crop(x: torch.Tensor, pad: int, generator: torch.Generator | None) -> torch.Tensor:
    """Zero-pad by ``pad`` then crop each image back to its size at a random offset, batch-wise."""
    b, c, h, w = x.shape
    padded = F.pad(x, (pad,) * 4)
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(x.device)
    rows = (dy.view(b, 1) + torch.arange(h, device=x.device)).view(b, 1, h, 1).expand(b, c, h, w + 2 * pad)
    out = padded.gather(2, rows)
    cols = (dx.view(b, 1) + torch.arange(w, device=x.device)).view(b, 1, 1, w).expand(b, c, h, w)
    return out.gather(3, cols)
