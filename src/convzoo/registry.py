"""The model registry: ``register_model``, ``create_model``, ``list_models``, ``ModelInfo``.

Every architecture family lives in one file under ``convzoo/models/``; its builders are registered
with the :func:`register_model` decorator, which records the metadata shown by ``convzoo list``.
The table and its look-ups live below the models, in :mod:`convzoo.models._registry` (the models
import nothing from here); this module re-exports them and adds what needs weights:
:func:`create_model` (shipped, torchvision's or a file's) and the model table's rows.
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from ._limits import check_fits
from .errors import ConvzooError, first_line
from .models._registry import (
    ModelInfo,
    list_models,
    model_info,
    natural_key,
    no_weights_hint,
    register_model,
    shipped_tags,
)

__all__ = ["ModelInfo", "check_model_fits", "create_model", "list_models", "model_info",
           "model_rows", "natural_key", "no_weights_hint", "register_model", "shipped_tags"]


def model_rows() -> list[dict[str, Any]]:
    """One row per registered model, in natural order: name, family, form, input (CxHxW),
    params (default arguments, no aux heads; counted on the meta device), shipped weights, paper.
    ``model_table.json`` holds these rows so that `convzoo list` needs no torch import
    (``python -m convzoo.registry`` rewrites it; a test checks that it equals this)."""
    rows = []
    for name in list_models():
        info = model_info(name)
        rows.append({"name": name, "family": info.family, "form": info.form,
                     "input": "x".join(map(str, info.input_size)),
                     "params": info.num_params(), "weights": sorted(info.weights),
                     "paper": info.paper})
    return rows


def _pretrained_tag(info: ModelInfo) -> str:
    """The weights ``pretrained=True`` means: torchvision's DEFAULT for an ImageNet form that
    torchvision has weights for, else the model's one shipped tag."""
    from .hub import DEFAULT_TAG, imagenet_tags

    if info.form == "imagenet" and imagenet_tags(info.name):
        return DEFAULT_TAG
    if len(info.weights) == 1:
        return next(iter(info.weights))
    raise ConvzooError(f"create_model({info.name!r}, pretrained=True): no pretrained weights for "
                       f"this model; {no_weights_hint()}")


def check_model_fits(info: ModelInfo, kwargs: dict[str, Any]) -> None:
    """Refuse, before anything is allocated, a model whose float32 parameters alone exceed this
    machine's memory (``num_classes=10**9``, a width of 10**6): counted on the meta device."""
    try:
        n = info.num_params(**kwargs)
    except (ValueError, TypeError, RuntimeError, OverflowError) as e:
        raise ConvzooError(f"model {info.name!r}: {first_line(e)}") from None
    args = ", ".join(f"{k}={v!r:.40}" for k, v in kwargs.items())
    check_fits(4 * n, f"model {info.name!r} with {args} has {n:,} parameters as float32")


def create_model(
    name: str,
    *,
    num_classes: int | None = None,
    in_chans: int | None = None,
    weights: str | None = None,
    reset_head: bool = False,
    pretrained: bool = False,
    **kwargs: Any,
) -> nn.Module:
    """Build the model registered as ``name`` (or ``"name:tag"`` for shipped weights, e.g.
    ``"resnet20:cifar10"``).

    ``num_classes`` and ``in_chans`` default to the model's own (1000 and 3 for the ImageNet
    forms). ``weights`` is a path to a ``.safetensors`` / torchvision ``.pth`` file or the tag of
    weights shipped with the package (e.g. ``"mnist"``) or of torchvision's ImageNet weights
    (``"imagenet"`` for its DEFAULT, ``"IMAGENET1K_V1"``: downloaded once into torch.hub's cache,
    see :mod:`convzoo.hub`); ``reset_head`` loads everything but the classifier, which stays
    freshly initialised for ``num_classes``. ``pretrained=True`` (timm's switch) means
    ``weights="imagenet"`` for the ImageNet forms, the shipped tag for the small ones.
    """
    if not isinstance(name, str):
        raise ConvzooError(f"create_model: the model name must be a string such as 'lenet5', "
                           f"got {type(name).__name__}")
    if ":" in name:
        name, _, tag = name.partition(":")
        if weights is not None and weights != tag:
            raise ConvzooError(f"create_model({name}:{tag!r}): the tag and weights={weights!r} "
                               f"disagree; give one of them")
        weights = tag
    info = model_info(name)
    if pretrained:
        if weights is not None:
            raise ConvzooError(f"create_model({name!r}): give pretrained=True or "
                               f"weights={weights!r}, not both")
        weights = _pretrained_tag(info)
    if weights is not None and weights not in info.weights:
        from .hub import weights_model_args

        kwargs = {**weights_model_args(name, weights), **kwargs}  # transform_input for TF ports
    params = inspect.signature(info.builder).parameters
    unknown = [k for k in kwargs if k not in params]
    if unknown:
        allowed = ", ".join(k for k in params if k not in ("num_classes", "in_chans")) or "none"
        raise ConvzooError(
            f"model {name!r} has no argument {unknown[0]!r}; its arguments are: {allowed}"
        )
    for key, value in (("num_classes", num_classes), ("in_chans", in_chans)):
        if value is not None:
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConvzooError(f"{key} must be an integer >= 1, got {value!r:.60}")
            kwargs[key] = value
    check_model_fits(info, kwargs)
    try:
        model = info.builder(**kwargs)
    except (ValueError, TypeError) as e:
        raise ConvzooError(f"model {name!r}: {e}") from None
    if weights is not None:
        from .weights import load_weights_into

        load_weights_into(model, info, weights, reset_head=reset_head)
    return model


if __name__ == "__main__":  # python -m convzoo.registry: rewrite model_table.json
    from ._model_table import write_model_table

    print(f"wrote {write_model_table(model_rows())}")
