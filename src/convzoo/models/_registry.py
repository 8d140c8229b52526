"""The table of registered models: :class:`ModelInfo`, the :func:`register_model` decorator
and the look-ups (:func:`list_models`, :func:`model_info`).

It sits in the models package, below everything that uses it: each family registers its
builders here, and importing this module imports ``convzoo.models`` first (its parent package),
which imports every family, so the table is complete before any look-up. :mod:`convzoo.registry`
(``create_model``, weights loading) builds on it; the weights and hub modules read it from here.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from ..errors import ConvzooError, shown
from ._common import ZooModel


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
        """Parameters of the model built with ``kwargs``, counted on the ``meta`` device (shapes
        only: nothing is allocated, and the initialisers are skipped)."""
        with torch.device("meta"), _SkipInPlace():
            model = self.builder(**kwargs)
        return sum(p.numel() for p in model.parameters())


class _SkipInPlace(TorchFunctionMode):
    """In-place ops (the initialisers' ``normal_``, ``uniform_``, ``zero_``) do nothing: on the
    meta device they compute nothing anyway, but their reference implementations import
    torch._dynamo (a second on a busy CPU, for `convzoo list`)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        target = args[0] if args else next(iter(kwargs.values()), None)  # nn.init passes tensor=
        if (name.endswith("_") and not name.endswith("__") and isinstance(target, torch.Tensor)
                and target.is_meta):
            return target
        return func(*args, **kwargs)


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
    """Register a keyword-only model builder under its function name (or ``name``). The model it
    returns must derive from :class:`convzoo.models.ZooModel`; each one built gets this entry as
    ``model.info``, from which it takes its name and smallest input."""

    def decorate(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        key = name or fn.__name__
        if key in _REGISTRY:
            raise RuntimeError(f"model {key!r} is registered twice")

        @functools.wraps(fn)
        def build(**kwargs: Any) -> nn.Module:
            model = fn(**kwargs)
            if not isinstance(model, ZooModel):
                raise TypeError(f"model {key!r}: its builder returned a {type(model).__name__}; "
                                f"a registered model's class must derive from "
                                f"convzoo.models.ZooModel")
            model.info = info  # its name, accepted sizes and weights, read by ZooModel
            return model

        info = _REGISTRY[key] = ModelInfo(
            name=key,
            builder=build,
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
        return build

    return decorate


def natural_key(name: str) -> list[Any]:
    """Sort key that orders the numbers in a name by value: resnet18 < resnet34 < resnet101."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def list_models(pattern: str | None = None, *, pretrained: bool = False) -> list[str]:
    """Registered names in natural order (resnet18 before resnet101), optionally filtered by a
    glob pattern such as ``"resnet*"``; ``pretrained=True`` keeps the models with shipped weights
    (load them as ``create_model("resnet20:cifar10")``)."""
    if pattern is not None and not isinstance(pattern, str):
        raise ConvzooError(f"list_models: pattern must be a glob string such as 'resnet*' or "
                           f"None, got {type(pattern).__name__}")
    names = sorted(_REGISTRY, key=natural_key)
    if pattern:
        names = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
    if pretrained:
        names = [n for n in names if _REGISTRY[n].weights]
    return names


def model_info(name: str) -> ModelInfo:
    """The :class:`ModelInfo` of ``name``; unknown names fail with close suggestions."""
    if not isinstance(name, str):
        raise ConvzooError(f"a model name must be a string, got {type(name).__name__}")
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name[:200], list(_REGISTRY), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see `convzoo list`"
        raise ConvzooError(f"unknown model {shown(name)!r}{hint}") from None


def shipped_tags() -> list[str]:
    """Every shipped ``model:tag`` (``lenet5:mnist``, ``resnet20:cifar10``)."""
    return [f"{n}:{t}" for n in list_models(pretrained=True) for t in sorted(_REGISTRY[n].weights)]


def no_weights_hint() -> str:
    """What to use instead of random weights: the shipped tags and torchvision's."""
    return (f"all shipped weights: {', '.join(shipped_tags())} (as MODEL:TAG); torchvision's "
            f"ImageNet weights as MODEL:imagenet (e.g. resnet18:imagenet, fetched once; "
            f"`convzoo weights list`)")
