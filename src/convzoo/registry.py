"""The model registry: ``register_model``, ``create_model``, ``list_models``, ``ModelInfo``.

Every architecture family lives in one file under ``convzoo/models/``; its builders are registered
with the :func:`register_model` decorator, which records the metadata shown by ``convzoo list``.
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from .errors import ConvzooError


@dataclass(frozen=True)
class ModelInfo:
    """What the registry knows about one model name."""

    name: str
    builder: Callable[..., nn.Module]
    family: str  # e.g. "lenet", "resnet"
    paper: str  # short citation, e.g. "LeCun et al. 1998"
    input_size: tuple[int, int, int]  # default (C, H, W) the model is built for
    min_size: int = 1  # smallest H (= W) the model accepts
    max_size: int | None = None  # largest H (= W), for nets whose fc layer fixes the size
    form: str = "imagenet"  # "imagenet" (torchvision-compatible) or "small" (MNIST/CIFAR-sized)
    torchvision_name: str | None = None  # torchvision builder whose state dict this one loads
    default_num_classes: int = 1000
    weights: dict[str, str] = field(default_factory=dict)  # tag -> file name inside convzoo/weights

    def num_params(self, **kwargs: Any) -> int:
        model = self.builder(**kwargs)
        return sum(p.numel() for p in model.parameters())


_REGISTRY: dict[str, ModelInfo] = {}


def register_model(
    *,
    family: str,
    paper: str,
    input_size: tuple[int, int, int],
    min_size: int = 1,
    max_size: int | None = None,
    form: str = "imagenet",
    torchvision_name: str | None = None,
    default_num_classes: int = 1000,
    weights: dict[str, str] | None = None,
    name: str | None = None,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register a keyword-only model builder under its function name (or ``name``)."""

    def decorate(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        key = name or fn.__name__
        if key in _REGISTRY:
            raise RuntimeError(f"model {key!r} is registered twice")
        _REGISTRY[key] = ModelInfo(
            name=key,
            builder=fn,
            family=family,
            paper=paper,
            input_size=input_size,
            min_size=min_size,
            max_size=max_size,
            form=form,
            torchvision_name=torchvision_name,
            default_num_classes=default_num_classes,
            weights=dict(weights or {}),
        )
        return fn

    return decorate


def _ensure_loaded() -> None:
    from . import models  # noqa: F401  (importing the package registers every family)


def list_models(pattern: str | None = None) -> list[str]:
    """Sorted registered names, optionally filtered by a glob pattern such as ``"resnet*"``."""
    _ensure_loaded()
    names = sorted(_REGISTRY)
    if pattern:
        names = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
    return names


def model_info(name: str) -> ModelInfo:
    """The :class:`ModelInfo` of ``name``; unknown names fail with close suggestions."""
    _ensure_loaded()
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see `convzoo list`"
        raise ConvzooError(f"unknown model {name!r}{hint}") from None


def create_model(
    name: str,
    *,
    num_classes: int | None = None,
    in_chans: int | None = None,
    weights: str | None = None,
    reset_head: bool = False,
    **kwargs: Any,
) -> nn.Module:
    """Build the model registered as ``name``.

    ``num_classes`` and ``in_chans`` default to the model's own (1000 and 3 for the ImageNet
    forms). ``weights`` is a path to a ``.safetensors`` / torchvision ``.pth`` file or the tag of
    weights shipped with the package (e.g. ``"mnist"``); ``reset_head`` loads everything but the
    classifier, which stays freshly initialised for ``num_classes``.
    """
    info = model_info(name)
    params = inspect.signature(info.builder).parameters
    unknown = [k for k in kwargs if k not in params]
    if unknown:
        allowed = ", ".join(k for k in params if k not in ("num_classes", "in_chans")) or "none"
        raise ConvzooError(
            f"model {name!r} has no argument {unknown[0]!r}; its arguments are: {allowed}"
        )
    if num_classes is not None:
        if num_classes < 1:
            raise ConvzooError(f"num_classes must be >= 1, got {num_classes}")
        kwargs["num_classes"] = num_classes
    if in_chans is not None:
        if in_chans < 1:
            raise ConvzooError(f"in_chans must be >= 1, got {in_chans}")
        kwargs["in_chans"] = in_chans
    try:
        model = info.builder(**kwargs)
    except (ValueError, TypeError) as e:
        raise ConvzooError(f"model {name!r}: {e}") from None
    if weights is not None:
        from .weights import load_weights_into

        load_weights_into(model, info, weights, reset_head=reset_head)
    return model
