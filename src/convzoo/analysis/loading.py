"""What the commands that look at single images need: class names to show (ImageNet WordNet ids
as names) and a loaded model's eval preprocessing for one image. Loading itself is
:func:`convzoo.engine.loaded.load_trained`.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import torch

from ..engine.loaded import Loaded
from ..errors import ConvzooError, DataError

log = logging.getLogger(__name__)

_WNID = re.compile(r"^n\d{8}$")


def display_classes(classes: list[str] | None, num_classes: int) -> list[str] | None:
    """Class names to show: ImageNet WordNet ids become names; 1000 unnamed outputs are ImageNet."""
    from ..data import imagenet_classes

    if classes is not None and len(classes) == num_classes:
        if len(classes) == 1000 and all(_WNID.match(c) for c in classes):
            wnids, names = imagenet_classes()
            by_wnid = dict(zip(wnids, names, strict=True))
            return [by_wnid.get(c, c) for c in classes]
        return list(classes)
    if num_classes == 1000:
        return imagenet_classes()[1]
    return None


def image_preset(loaded: Loaded):
    """The preset a loaded model scores single images with: its run's own, else its data set's
    (ImageNet's when unknown) at the side it was trained at."""
    from ..data import preset_for
    from ..hub import eval_sizes

    if loaded.preset is not None:
        return loaded.preset
    return preset_for(loaded.data or "imagenet", in_chans=loaded.in_chans, image_size=loaded.side,
                      input_size=loaded.side, eval_sizes=eval_sizes(loaded.name))


def image_transform(loaded: Loaded):
    """The model's eval preprocessing: a function PIL image -> float tensor (C, H, W).

    The same transform ``convzoo eval`` applies to the model's test split: for a streamed preset
    (large images) the shorter side resized and the center cropped
    (:func:`convzoo.data.stream.stream_transform`), otherwise the image resized to the side the
    model was trained at; then normalised by the preset.
    """
    return preset_transform(image_preset(loaded), loaded.side, loaded.in_chans)


def preset_transform(preset, side: int, chans: int):
    """:func:`image_transform` of a preset: a function PIL image (or uint8 tensor (C, H, W)) ->
    float tensor (C, ``side``, ``side``)."""
    from torchvision.transforms import v2

    from ..data import apply_preset, finish_batch
    from ..data.stream import stream_transform

    mode = "L" if chans == 1 else "RGB"

    def transform(img) -> torch.Tensor:
        if isinstance(img, torch.Tensor):
            x = img if img.shape[0] == chans else img[:1].expand(chans, -1, -1).contiguous()
        else:
            x = v2.functional.pil_to_tensor(img.convert(mode))  # uint8 (C, H, W)
        if preset.streamed:
            # Resizing the shorter side of a 1x10000 strip to 256 would make 2.6 Mpx rows; only
            # the center square is kept, so first cut the long side to twice the short one.
            h, w = x.shape[-2:]
            if max(h, w) > 2 * min(h, w):
                x = v2.functional.center_crop(x, [min(h, 2 * w), min(w, 2 * h)])
            x = stream_transform(preset, train=False)(x)
            return finish_batch(x[None], preset, train=False, in_chans=chans)[0]
        if tuple(x.shape[-2:]) != (side, side):
            x = v2.functional.resize(x, [side, side], antialias=True)
        return apply_preset(x[None], preset, train=False, in_chans=chans)[0]

    return transform


def resolve_data_config(model, *, data: str | None = None) -> dict:
    """What ``model`` expects as input (timm's ``resolve_data_config``): ``input_size`` (C, H, W),
    per-channel ``mean`` and ``std``, ``interpolation``, ``crop_pct`` (eval crop / resize of
    streamed images; 1.0: the whole image resized), the data set and the full ``preset``.

    ``model``: a registered name, ``model:tag``, run directory or weights file (see
    :func:`~convzoo.engine.loaded.load_trained`), a :class:`Loaded`, or a module made by
    ``create_model``. The values are the ones ``convzoo eval`` and ``predict`` use: the run's
    preset, else the data set's (``data``; default the one it was trained on, else ImageNet for
    the ImageNet forms, CIFAR-10 or MNIST for the small ones) at the side it was trained at.
    """
    from dataclasses import replace

    from torch import nn

    from ..engine.loaded import load_trained
    from ..registry import model_info

    if isinstance(model, nn.Module):
        name = getattr(model, "convzoo_name", None)
        if name is None:
            raise ConvzooError(f"resolve_data_config: {type(model).__name__} was not made by "
                               f"convzoo.create_model; pass its name")
        info = model_info(name)
        loaded = Loaded(model, name, info, {"in_chans": _in_chans(model, info)}, None, None)
    elif isinstance(model, Loaded):
        loaded = model
    else:
        loaded = load_trained(model)
    if data is None and loaded.data is None and loaded.info.form == "small":
        # An untrained small form: the data it is built for (its shipped weights' set, else
        # MNIST for one channel and CIFAR-10 for three), not ImageNet.
        tags = sorted(loaded.info.weights)
        data = tags[0] if tags else ("mnist" if loaded.in_chans == 1 else "cifar10")
    if data is not None and data != loaded.data:
        loaded = replace(loaded, data=data, preset=None)
    preset = image_preset(loaded)
    side = loaded.side
    crop_pct = (preset.crop_size / preset.resize_size
                if preset.streamed and preset.resize_size else 1.0)
    return {"model": loaded.name, "input_size": (loaded.in_chans, side, side),
            "mean": tuple(preset.mean), "std": tuple(preset.std),
            "interpolation": preset.interpolation, "crop_pct": crop_pct,
            "data": loaded.data or data or "imagenet", "preset": preset.to_dict()}


def _in_chans(model, info) -> int:
    from torch import nn

    conv = next((m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))), None)
    if isinstance(conv, nn.Conv2d):
        return conv.in_channels
    return info.input_size[0]


def create_transform(config: dict):
    """The eval transform of a :func:`resolve_data_config` dict (timm's ``create_transform``):
    a function PIL image (or uint8 tensor) -> float tensor (C, H, W), the preprocessing
    ``convzoo predict`` applies."""
    from ..data import DataPreset

    try:
        chans, side, _ = config["input_size"]
        preset = DataPreset.from_dict(config["preset"])
    except (KeyError, TypeError, ValueError) as e:
        raise ConvzooError(f"create_transform: expected a resolve_data_config() dict ({e})"
                           ) from None
    return preset_transform(preset, int(side), int(chans))


def open_image(path: str | Path):
    """A PIL image (RGB), or None when it is not a readable image (the caller says so, once).

    Decoded by :func:`convzoo.data.images.decode_file`, the opener data folders and ``explore``
    use: an image of more than ``convzoo.data.images.MAX_IMAGE_PIXELS`` (known from its header) is
    refused with a ConvzooError naming the file: a 20000x20000 PNG would decode to 1.2 GB.
    """
    from torchvision.transforms.v2.functional import to_pil_image

    from ..data.images import ImageTooLarge, decode_file

    try:
        return to_pil_image(decode_file(path, 3))
    except ImageTooLarge as e:
        raise ConvzooError(f"{e} (resize it first)") from None
    except DataError as e:
        log.debug("%s", e)  # the caller reports it
        return None
