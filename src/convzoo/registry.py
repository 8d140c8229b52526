"""The model registry: ``register_model``, ``create_model``, ``list_models``, ``ModelInfo``.

Every architecture family lives in one file under ``convzoo/models/``; its builders are registered
with the :func:`register_model` decorator, which records the metadata shown by ``convzoo list``.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from ._limits import check_fits
from .errors import ConvzooError, first_line, shown


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
            from .models._common import ZooModel

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


def _ensure_loaded() -> None:
    from . import models  # noqa: F401  (importing the package registers every family)


def natural_key(name: str) -> list[Any]:
    """Sort key that orders the numbers in a name by value: resnet18 < resnet34 < resnet101."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def list_models(pattern: str | None = None, *, pretrained: bool = False) -> list[str]:
    """Registered names in natural order (resnet18 before resnet101), optionally filtered by a
    glob pattern such as ``"resnet*"``; ``pretrained=True`` keeps the models with shipped weights
    (load them as ``create_model("resnet20:cifar10")``)."""
    _ensure_loaded()
    if pattern is not None and not isinstance(pattern, str):
        raise ConvzooError(f"list_models: pattern must be a glob string such as 'resnet*' or "
                           f"None, got {type(pattern).__name__}")
    names = sorted(_REGISTRY, key=natural_key)
    if pattern:
        names = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
    if pretrained:
        names = [n for n in names if _REGISTRY[n].weights]
    return names


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


def shipped_tags() -> list[str]:
    """Every shipped ``model:tag`` (``lenet5:mnist``, ``resnet20:cifar10``)."""
    return [f"{n}:{t}" for n in list_models(pretrained=True) for t in sorted(_REGISTRY[n].weights)]


def no_weights_hint() -> str:
    """What to use instead of random weights: the shipped tags and torchvision's."""
    return (f"all shipped weights: {', '.join(shipped_tags())} (as MODEL:TAG); torchvision's "
            f"ImageNet weights as MODEL:imagenet (e.g. resnet18:imagenet, fetched once; "
            f"`convzoo weights list`)")


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


def model_info(name: str) -> ModelInfo:
    """The :class:`ModelInfo` of ``name``; unknown names fail with close suggestions."""
    _ensure_loaded()
    if not isinstance(name, str):
        raise ConvzooError(f"a model name must be a string, got {type(name).__name__}")
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name[:200], list(_REGISTRY), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see `convzoo list`"
        raise ConvzooError(f"unknown model {shown(name)!r}{hint}") from None


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
    from . import registry  # the module the models register into, not this __main__ copy
    from ._model_table import write_model_table

    print(f"wrote {write_model_table(registry.model_rows())}")
