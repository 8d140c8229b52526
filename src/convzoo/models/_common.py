"""What every model class shares: :class:`ZooModel`, the base class of every registered model.

timm's way: the registry's builder hands each model its :class:`~convzoo.registry.ModelInfo` as
``model.info``, and the model reads its name and smallest accepted input from there (one
``min_size`` per model, in the registry) for the early, named input check. :func:`head_names`
is the one place that finds the classifier, for timm's classifier API (``num_classes``,
``get_classifier``, ``reset_classifier``), ``reset_head`` loading and ``--freeze-backbone``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from ..errors import ConvzooError

if TYPE_CHECKING:
    from ._registry import ModelInfo


def _find_head(model: nn.Module) -> list[str]:
    prefixes = getattr(model, "head_prefixes", None)
    if prefixes:
        names = [p.rstrip(".") for p in prefixes]
    else:
        names = [n for n in ("fc", "classifier", "head") if hasattr(model, n)][:1]
    mods = dict(model.named_modules())
    if not names:  # e.g. an MLP's Sequential: its last Linear or Conv2d
        names = [n for n, m in mods.items() if isinstance(m, (nn.Linear, nn.Conv2d))][-1:]
    out = []
    for n in names:
        m = mods.get(n)
        if isinstance(m, nn.Sequential):
            last = [k for k, c in m.named_children() if isinstance(c, (nn.Linear, nn.Conv2d))]
            n = f"{n}.{last[-1]}" if last else n
        if n in mods:
            out.append(n)
    if not out:
        raise ConvzooError(f"{type(model).__name__} has no classifier layer convzoo can find")
    return out


def head_names(model: nn.Module) -> list[str]:
    """Qualified names of the layers whose shape depends on the number of classes (main
    classifier first, then any auxiliary heads): the model's ``head_prefixes`` where it declares
    them, else its ``fc`` / ``classifier`` / ``head``, else its last Linear or Conv2d; a Sequential
    resolves to its last Linear or Conv2d. Found once per model: after ``reset_classifier(0)`` the
    Identity left behind is not findable again."""
    if "_head_names_" not in model.__dict__:
        model.__dict__["_head_names_"] = _find_head(model)
    return model.__dict__["_head_names_"]


def is_head_key(key: str, model: nn.Module) -> bool:
    """Whether state-dict ``key`` (or parameter name) belongs to one of :func:`head_names`."""
    return any(key.startswith(f"{n}.") for n in head_names(model))


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


class ZooModel(nn.Module):
    """The base of every zoo model: its registry entry (``info``), the input check, and timm's
    classifier API -- ``num_classes``, ``get_classifier()`` and ``reset_classifier(n)``.

    A model built from its class directly, not through ``create_model``, has no ``info``: it is
    named by its class and checks no size (``min_size`` 1).
    """

    info: ModelInfo | None = None  # set by the registry's builder: name, sizes, weights
    # Key prefixes of the layers that depend on num_classes, where fc / classifier / head does
    # not find them (see head_names).
    head_prefixes: tuple[str, ...] = ()

    @property
    def convzoo_name(self) -> str | None:
        """The registered name (``None`` when built outside the registry)."""
        return self.info.name if self.info is not None else None

    @property
    def shown_name(self) -> str:
        """The name error messages give: the registered one, else the class's."""
        return self.convzoo_name or type(self).__name__

    @property
    def min_size(self) -> int:
        """The smallest H (= W) ``forward`` accepts: the registry's ``min_size``."""
        return self.info.min_size if self.info is not None else 1

    def check_input(self, x: torch.Tensor, *, in_chans: int | None = None) -> None:
        """Fail with a ConvzooError naming the model, rather than deep inside a layer."""
        name = self.shown_name
        if in_chans is not None and (x.dim() != 4 or x.shape[1] != in_chans):
            raise ConvzooError(
                f"model {name!r} expects a (B, {in_chans}, H, W) batch, got shape {tuple(x.shape)}"
            )
        h, w, side = x.shape[-2], x.shape[-1], self.min_size
        if h < side or w < side:
            raise ConvzooError(
                f"model {name!r} needs inputs of at least {side}x{side} pixels, got {h}x{w}"
            )

    @property
    def num_classes(self) -> int:
        head = self.get_classifier()
        if isinstance(head, nn.Linear):
            return head.out_features
        if isinstance(head, nn.Conv2d):
            return head.out_channels
        return 0  # nn.Identity: reset_classifier(0), the model returns features

    def get_classifier(self) -> nn.Module:
        """The layer whose outputs are the class logits."""
        return self.get_submodule(head_names(self)[0])

    def reset_classifier(self, num_classes: int) -> None:
        """A freshly initialised classifier (and auxiliary heads) for ``num_classes`` classes;
        0 replaces it by ``nn.Identity`` so that the model returns its pooled features."""
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
            raise ConvzooError(f"reset_classifier: num_classes must be an int >= 0, "
                               f"got {num_classes!r}")
        for name in head_names(self):
            old = self.get_submodule(name)
            if num_classes == 0:
                new: nn.Module = nn.Identity()
            elif isinstance(old, nn.Conv2d):
                new = nn.Conv2d(old.in_channels, num_classes, old.kernel_size, old.stride,
                                old.padding, bias=old.bias is not None)
            elif isinstance(old, nn.Linear):
                new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
            else:
                raise ConvzooError(f"reset_classifier: {name} of {type(self).__name__} is a "
                                   f"{type(old).__name__}, not a Linear or Conv2d")
            param = next(iter(old.parameters()), None)
            if param is not None:
                new = new.to(device=param.device, dtype=param.dtype)
            _replace(self, name, new)
