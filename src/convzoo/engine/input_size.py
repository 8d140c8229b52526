"""The side of the square images a model sees: the rule that weighs the model's accepted sizes,
its weights and the images' own size (docs/data.md, "How the input size is chosen").

It sits in the engine, above data/: data/ knows images and presets, never a model; the registry
says what a model accepts (``ModelInfo.min_size``, ``max_size``, ``input_size``). The trainer asks
:func:`resolve_input_size`, then hands the side to :func:`convzoo.data.preset_for` as a number.
"""

from __future__ import annotations

from ..data.presets import SMALL_IMAGE
from ..errors import ConvzooError
from ..registry import ModelInfo, model_info


def _accepts(info: ModelInfo) -> str:
    """The sides ``info``'s model accepts, in words: ">= 63 px", "only 32 px", "25-32 px"."""
    if info.max_size is None:
        return f">= {info.min_size} px"
    if info.max_size == info.min_size:
        return f"only {info.min_size} px"
    return f"{info.min_size}-{info.max_size} px"


def resolve_input_size(model: str, *, image_size: int | None, requested: int | None,
                       weights_size: int | None) -> tuple[int, str]:
    """The side (pixels) of the square images ``model`` sees, and one sentence saying why.

    In order: ``requested`` (``--input-size``) wins, refused with a ConvzooError outside the
    model's range; else ``weights_size``, the size the loaded weights were trained at; else, for
    square images all of side ``image_size``, the images' own size when the model accepts it,
    otherwise the nearest size it accepts (resized, never padded) -- except that photos larger
    than both :data:`SMALL_IMAGE` and the model's default input are cropped and resized to that
    default, as ImageNet training does; else (``image_size`` None: images of mixed sizes) the
    model's default input (224, 299 for inception_v3, 32 for the CIFAR forms).
    """
    info = model_info(model)
    lo, hi = info.min_size, info.max_size
    if requested is not None:
        if requested < 1:
            raise ConvzooError(f"--input-size {requested}: expected a positive number of pixels")
        if requested < lo or (hi is not None and requested > hi):
            raise ConvzooError(f"--input-size {requested}: model {model!r} accepts "
                               f"{_accepts(info)}")
        return requested, f"input {requested} px: asked for with --input-size"
    if weights_size is not None:
        return weights_size, f"input {weights_size} px: the size its weights were trained at"
    default = info.input_size[1]
    if image_size is None:
        return default, (f"input {default} px: {model}'s default input (images of mixed sizes, "
                         "streamed; resized to it)")
    if image_size > max(SMALL_IMAGE, default):
        return default, (f"input {default} px: {model}'s default input (images are "
                         f"{image_size} px, larger than it; cropped and resized to it)")
    if image_size < lo:
        return lo, (f"input {lo} px: images are {image_size} px, below {model}'s minimum of "
                    f"{lo} px; resized up")
    if hi is not None and image_size > hi:
        return hi, (f"input {hi} px: images are {image_size} px, above {model}'s maximum of "
                    f"{hi} px; resized down")
    return image_size, (f"input {image_size} px: the images' own size ({model} accepts "
                        f"{_accepts(info)})")
