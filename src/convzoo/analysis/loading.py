"""What the commands that look at single images need: class names to show (ImageNet WordNet ids
as names) and a loaded model's eval preprocessing for one image. Loading itself is
:func:`convzoo.engine.loaded.load_trained`.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import torch

from ..engine.loaded import Loaded
from ..errors import ConvzooError

log = logging.getLogger(__name__)

CLASS_INDEX = Path(__file__).resolve().parents[1] / "data" / "imagenet_class_index.json"
_WNID = re.compile(r"^n\d{8}$")


def imagenet_classes() -> list[tuple[str, str]]:
    """The 1000 ILSVRC-2012 classes as ``(wnid, short name)`` in index order."""
    try:
        index = json.loads(CLASS_INDEX.read_text())
    except OSError as e:
        raise ConvzooError(f"cannot read the ImageNet class index {CLASS_INDEX}: {e}") from None
    return [tuple(index[str(i)]) for i in range(len(index))]  # type: ignore[misc]


def imagenet_display_names() -> list[str]:
    """Short names with ``_`` as spaces; a name two classes share (``crane``, ``maillot``) gets
    its WordNet id, e.g. ``crane (n02012849)``."""
    pairs = imagenet_classes()
    names = [n.replace("_", " ") for _, n in pairs]
    dup = {n for n in names if names.count(n) > 1}
    return [f"{n} ({w})" if n in dup else n for (w, _), n in zip(pairs, names, strict=False)]


def display_classes(classes: list[str] | None, num_classes: int) -> list[str] | None:
    """Class names to show: ImageNet WordNet ids become names; 1000 unnamed outputs are ImageNet."""
    if classes is not None and len(classes) == num_classes:
        if len(classes) == 1000 and all(_WNID.match(c) for c in classes):
            wnids = [w for w, _ in imagenet_classes()]
            by_wnid = dict(zip(wnids, imagenet_display_names(), strict=True))
            return [by_wnid.get(c, c) for c in classes]
        return list(classes)
    if num_classes == 1000:
        return imagenet_display_names()
    return None


def image_preset(loaded: Loaded):
    """The preset a loaded model scores single images with: its run's own, else its data set's
    (ImageNet's when unknown) at the side it was trained at."""
    from ..data import preset_for

    if loaded.preset is not None:
        return loaded.preset
    return preset_for(loaded.data or "imagenet", in_chans=loaded.in_chans, image_size=loaded.side,
                      input_size=loaded.side, model=loaded.name)


def image_transform(loaded: Loaded):
    """The model's eval preprocessing: a function PIL image -> float tensor (C, H, W).

    The same transform ``convzoo eval`` applies to the model's test split: for a streamed preset
    (large images) the shorter side resized and the center cropped
    (:func:`convzoo.data.stream.stream_transform`), otherwise the image resized to the side the
    model was trained at; then normalised by the preset.
    """
    from torchvision.transforms import v2

    from ..data import apply_preset, finish_batch
    from ..data.stream import stream_transform

    chans = loaded.in_chans
    preset = image_preset(loaded)
    side = loaded.side
    mode = "L" if chans == 1 else "RGB"

    def transform(img) -> torch.Tensor:
        x = v2.functional.pil_to_tensor(img.convert(mode))  # uint8 (C, H, W)
        if preset.streamed:
            x = stream_transform(preset, train=False)(x)
            return finish_batch(x[None], preset, train=False, in_chans=chans)[0]
        if tuple(x.shape[-2:]) != (side, side):
            x = v2.functional.resize(x, [side, side], antialias=True)
        return apply_preset(x[None], preset, train=False, in_chans=chans)[0]

    return transform


def open_image(path: str | Path):
    """A PIL image, or None (with a warning naming the file) when it is not a readable image."""
    from PIL import Image, UnidentifiedImageError

    try:
        img = Image.open(path)
        img.load()
        return img
    except (UnidentifiedImageError, OSError, ValueError) as e:
        log.warning("skipping %s: not a readable image (%s)", path, e)
        return None
