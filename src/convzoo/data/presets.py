"""Data presets (normalisation, augmentation, sizes) and the batch-wise transform.

Each data set's own preset is one field of its record in :data:`convzoo.data.datasets.DATASETS`;
:func:`convzoo.data.datasets.preset_for` adapts it to a model's channels and input size.

In-memory data sets (MNIST, CIFAR, folders of small images) are augmented on whole batches of
uint8 images on the training device, and resized there when the model sees another size: no
per-sample Python. Streamed folders (large or mixed-size images) get their geometric augmentation
per sample in DataLoader workers (:mod:`.stream`, built from the same preset) and the rest
(lighting noise, normalisation) batch-wise by :func:`finish_batch`.

The side the model sees is chosen above data/, by
:func:`convzoo.engine.input_size.resolve_input_size` (the rule is in docs/data.md, "How the input
size is chosen"), and the eval sizes of a model's weights by :func:`convzoo.hub.eval_sizes`; this
module takes both as numbers and never names a model. Images are resized, never padded.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import ConvzooError


def _check_preset_types(d: dict[str, Any]) -> None:
    """A preset read back from JSON has the field types the transforms rely on."""

    def numbers(v: Any, n: tuple[int, ...]) -> bool:
        return (isinstance(v, tuple) and len(v) in n and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
            for x in v))

    def side(v: Any) -> bool:
        return v is None or (isinstance(v, int) and not isinstance(v, bool) and v > 0)

    checks = {
        "mean": (lambda v: numbers(v, (1, 3)), "1 or 3 numbers"),
        "std": (lambda v: numbers(v, (1, 3)) and min(v) > 0, "1 or 3 positive numbers"),
        "crop_padding": (lambda v: v is not None and (side(v) or v == 0), "an integer >= 0"),
        "hflip": (lambda v: isinstance(v, bool), "true or false"),
        "resize_to": (side, "null or a positive integer"),
        "crop_size": (side, "null or a positive integer"),
        "resize_size": (side, "null or a positive integer"),
        "interpolation": (lambda v: v in ("bilinear", "bicubic"), "'bilinear' or 'bicubic'"),
        "rrc_scale": (lambda v: numbers(v, (2,)), "2 numbers"),
        "scale_jitter": (lambda v: v is None or numbers(v, (2,)), "null or 2 numbers"),
        "lighting": (lambda v: numbers((v,), (1,)), "a number"),
    }
    missing = [k for k in ("mean", "std") if k not in d]
    if missing:
        raise ConvzooError(f"data preset lacks {' and '.join(missing)}")
    for key, value in d.items():
        ok, expected = checks[key]
        if not ok(value):
            raise ConvzooError(f"data preset field {key!r} must be {expected}, got {value!r:.60}")


@dataclass(frozen=True)
class DataPreset:
    """How a batch of uint8 images becomes the model's float input."""

    mean: tuple[float, ...]  # per channel, in [0, 1] units
    std: tuple[float, ...]
    crop_padding: int = 0  # train: pad by this many pixels (mean pixel), random-crop back
    hflip: bool = False  # train: random horizontal flip with probability 0.5
    # In-memory data sets: the side the model sees (pixels). Batches of another side are resized
    # to it on the device after crop/flip (bilinear, antialiased when shrinking); None keeps the
    # images' own size. Replaces the old ``pad_to`` (zero padding), read back by from_dict.
    resize_to: int | None = None
    # Streamed folders (see convzoo.data.stream); None for in-memory data sets.
    crop_size: int | None = None  # pixels: side of the square the model sees (224, 299, 32)
    resize_size: int | None = None  # pixels: eval resizes the shorter side to this, then crops
    interpolation: str = "bilinear"  # "bilinear" or "bicubic", for both resizes
    rrc_scale: tuple[float, float] = (0.08, 1.0)  # train RandomResizedCrop area fraction range
    # VGG (Simonyan & Zisserman 2014, Sec. 3.1) scale jitter: shorter side drawn from [S_min, S_max]
    # (pixels), then a random crop_size crop; replaces RandomResizedCrop when set.
    scale_jitter: tuple[int, int] | None = None
    # AlexNet (Krizhevsky et al. 2012, Sec. 4.1) PCA colour noise: std of the eigenvalue weights
    # (0.1 in the paper); 0 disables it.
    lighting: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DataPreset:
        """The preset written by :meth:`to_dict` (a run's ``preset.json``, weights metadata).

        JSON lists become tuples again. A dict of a run made before the input-size rule has
        ``pad_to`` (zero padding up to the model's size): it becomes ``resize_to``, so such a run
        is now evaluated with its images resized to that size instead of padded.
        """
        if not isinstance(d, Mapping):
            raise ConvzooError(f"data preset must be a JSON object, got {type(d).__name__}")
        d = dict(d)
        if "pad_to" in d:
            pad_to = d.pop("pad_to")
            d.setdefault("resize_to", pad_to)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConvzooError(f"data preset has unknown field(s) {', '.join(unknown)}; expected "
                               f"some of {', '.join(sorted(known))}")
        d = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        _check_preset_types(d)
        return cls(**d)

    @property
    def streamed(self) -> bool:
        """True for the streamed presets (per-sample resize/crop in DataLoader workers)."""
        return self.crop_size is not None

    @property
    def input_side(self) -> int | None:
        """The side the model sees (pixels); None: the in-memory images' own size."""
        return self.crop_size if self.streamed else self.resize_to


IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)

DEFAULT_EVAL_SIZES = (256, 224)  # pixels: resize the shorter side, then center-crop
SMALL_IMAGE = 64  # pixels: at most this a side is a "small image" data set (in memory)


# AlexNet's PCA of ImageNet RGB pixels (eigenvalues and eigenvectors as columns, pixels in [0, 1]),
# the figures used by fb.resnet.torch and most re-implementations of the lighting noise.
PCA_EIGVAL = (0.2175, 0.0188, 0.0045)
PCA_EIGVEC = ((-0.5675, 0.7192, 0.4009),
              (-0.5808, -0.0045, -0.8140),
              (-0.5836, -0.6948, 0.4203))


@functools.lru_cache(maxsize=64)
def _constant(values: tuple[float, ...], dtype: torch.dtype, device: torch.device
              ) -> torch.Tensor:
    """A small constant tensor, made once per device: building it from a Python list on every
    batch would be a host-to-device copy, and PyTorch waits for the GPU after each such copy."""
    return torch.tensor(values, dtype=dtype, device=device)


def lighting_noise(x: torch.Tensor, std: float, generator: torch.Generator | None = None
                   ) -> torch.Tensor:
    """Add AlexNet's PCA colour noise to float RGB (B, 3, H, W) in [0, 1] (Sec. 4.1, batch-wise).

    Each image gets ``sum_i alpha_i * lambda_i * p_i`` added to every pixel, alpha_i ~ N(0, std).
    """
    alpha = torch.randn(x.shape[0], 3, generator=generator, dtype=torch.float64) * std  # (B, 3)
    eigval = torch.tensor(PCA_EIGVAL, dtype=torch.float64)
    eigvec = torch.tensor(PCA_EIGVEC, dtype=torch.float64)  # (3 colours, 3 components)
    rgb = (alpha * eigval) @ eigvec.T  # (B, 3): the per-image colour shift
    return x + rgb.to(x.dtype).to(x.device).view(-1, 3, 1, 1)


def finish_batch(images: torch.Tensor, preset: DataPreset, *, train: bool,
                 generator: torch.Generator | None = None, in_chans: int | None = None,
                 dtype: torch.dtype = torch.float32, channels_last: bool = False) -> torch.Tensor:
    """A streamed batch, uint8 (B, C, H, W) already cropped/flipped -> normalised float."""
    x = images.to(dtype).div_(255.0)
    if in_chans is not None and x.shape[1] != in_chans:
        if x.shape[1] != 1:
            raise ValueError(f"cannot feed {x.shape[1]}-channel images to a {in_chans}-channel "
                             "model")
        x = x.expand(-1, in_chans, -1, -1)
    if train and preset.lighting and x.shape[1] == 3:
        x = lighting_noise(x, preset.lighting, generator)
    mean = _constant(tuple(preset.mean), dtype, x.device).view(1, -1, 1, 1)
    std = _constant(tuple(preset.std), dtype, x.device).view(1, -1, 1, 1)
    x = (x - mean) / std
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def apply_preset(
    images: torch.Tensor,
    preset: DataPreset,
    *,
    train: bool,
    generator: torch.Generator | None = None,
    in_chans: int | None = None,
    dtype: torch.dtype = torch.float32,
    aug: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """uint8 (B, C, H, W) -> normalised float (B, C', H', W'), augmented when ``train``.

    ``aug`` = (dy, dx, flip) per image, from :func:`draw_crop_flip`, fixes the random crop and flip
    (the trainer draws them per sample and epoch, so batching, sharding and gradient accumulation do
    not change them); without it they are drawn from ``generator`` here.

    Training crop and flip run on the uint8 batch as one gather (4x less memory traffic than on
    floats); the crop's padding is the preset's mean pixel, so it normalises to zero. Then, when
    the preset's ``resize_to`` differs from the images' side, the normalised batch is resized
    (bilinear, antialiased when shrinking; it commutes with the per-channel normalisation).
    """
    x = images
    if train and (preset.crop_padding or preset.hflip):
        x = crop_flip(x, preset.crop_padding, preset.hflip, preset.mean, generator, aug=aug)
    c = x.shape[1]
    mean, std = preset.mean, preset.std
    if len(mean) != c:  # a preset adapted to in_chans, applied before grey -> RGB repetition
        mean, std = (sum(mean) / len(mean),) * c, (sum(std) / len(std),) * c
    # (x / 255 - mean) / std as one multiply-add per pixel.
    scale = _constant(tuple(1.0 / (255.0 * s) for s in std), dtype, x.device)
    shift = _constant(tuple(-m / s for m, s in zip(mean, std, strict=True)), dtype, x.device)
    x = torch.addcmul(shift.view(1, -1, 1, 1), x.to(dtype), scale.view(1, -1, 1, 1))
    x = resize_batch(x, preset.resize_to)
    if in_chans is not None and x.shape[1] != in_chans:
        if x.shape[1] == 1:
            x = x.expand(-1, in_chans, -1, -1)  # grey -> RGB by repetition
        else:
            raise ValueError(f"cannot feed {x.shape[1]}-channel images to a {in_chans}-channel "
                             "model")
    return x


def resize_batch(x: torch.Tensor, side: int | None) -> torch.Tensor:
    """Float (B, C, H, W) -> (B, C, side, side), bilinear, antialiased when shrinking; unchanged
    when ``side`` is None or already the batch's size."""
    h, w = x.shape[-2:]
    if side is None or (h, w) == (side, side):
        return x
    return F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False,
                         antialias=side < h or side < w)


def draw_crop_flip(n: int, pad: int, hflip: bool, generator: torch.Generator | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random crop offsets ``dy``, ``dx`` in [0, 2 pad] and flip flags for ``n`` images."""
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    flip = torch.rand(n, generator=generator) < 0.5 if hflip else torch.zeros(n, dtype=torch.bool)
    return dy, dx, flip


def crop_flip(images: torch.Tensor, pad: int, hflip: bool, fill: tuple[float, ...],
              generator: torch.Generator | None = None,
              aug: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Random ``pad``-pixel translation (pad + crop back) and horizontal flip of a uint8 batch.

    He et al. 2016, Sec. 4.2: pad 4 pixels on each side, take a random 32x32 crop, flip with
    probability 0.5. The padding is ``fill`` (per channel, in [0, 1]). Crop and flip are one
    gather over the flattened padded image: output pixel (i, j) of image b reads padded pixel
    (dy_b + i, dx_b + j), or (dy_b + i, dx_b + W - 1 - j) when b is flipped.
    """
    b, c, h, w = images.shape
    dev = images.device
    if aug is None:
        aug = draw_crop_flip(b, pad, hflip, generator)
    dy, dx, flip = (t.to(dev) for t in aug)
    if pad:
        if len(fill) != c:
            fill = (sum(fill) / len(fill),) * c
        wp = w + 2 * pad
        padded = images.new_empty(b, c, h + 2 * pad, wp)
        padded[:] = _constant(tuple(round(f * 255) for f in fill), images.dtype,
                              dev).view(1, c, 1, 1)
        padded[:, :, pad:pad + h, pad:pad + w] = images
    else:
        wp, padded = w, images
        dy, dx = torch.zeros_like(dy), torch.zeros_like(dx)
    cols = torch.arange(w, device=dev).expand(b, w)  # (B, W)
    if hflip:
        cols = torch.where(flip.view(b, 1), w - 1 - cols, cols)
    rows = dy.view(b, 1, 1) + torch.arange(h, device=dev).view(1, h, 1)  # (B, H, 1)
    index = (rows * wp + (dx.view(b, 1) + cols).view(b, 1, w)).view(b, 1, h * w)
    out = padded.reshape(b, c, -1).gather(2, index.expand(b, c, h * w))  # (B, C, H*W)
    return out.view(b, c, h, w)
