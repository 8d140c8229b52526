"""What every model file shares: the early, named input check, and timm's classifier API
(``num_classes``, ``get_classifier``, ``reset_classifier``) that the registry adds to every
model."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConvzooError


def check_input(x: torch.Tensor, *, name: str, min_size: int, in_chans: int | None = None
                ) -> None:
    """Fail with a ConvzooError naming the model, rather than deep inside a layer."""
    if in_chans is not None and (x.dim() != 4 or x.shape[1] != in_chans):
        raise ConvzooError(
            f"model {name!r} expects a (B, {in_chans}, H, W) batch, got shape {tuple(x.shape)}"
        )
    h, w = x.shape[-2], x.shape[-1]
    if h < min_size or w < min_size:
        raise ConvzooError(
            f"model {name!r} needs inputs of at least {min_size}x{min_size} pixels, got {h}x{w}"
        )


def _head_names(model: nn.Module) -> list[str]:
    """Qualified names of the layers that map features to classes: the model's ``head_prefixes``
    (main classifier first, then any auxiliary heads), else its ``fc``/``classifier``/``head``,
    else its last Linear or Conv2d. A Sequential resolves to its last Linear or Conv2d."""
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


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


class ClassifierAPI:
    """timm's model API on every registered model (the registry adds it to each model class):
    ``num_classes``, ``get_classifier()`` and ``reset_classifier(n)``."""

    @property
    def num_classes(self) -> int:
        head = self.get_classifier()
        if isinstance(head, nn.Linear):
            return head.out_features
        if isinstance(head, nn.Conv2d):
            return head.out_channels
        return 0  # nn.Identity: reset_classifier(0), the model returns features

    def _classifier_names(self) -> list[str]:
        # Found once: after reset_classifier(0) the Identity left behind is not findable again.
        if "_classifier_names_" not in self.__dict__:
            self.__dict__["_classifier_names_"] = _head_names(self)
        return self.__dict__["_classifier_names_"]

    def get_classifier(self) -> nn.Module:
        """The layer whose outputs are the class logits."""
        return self.get_submodule(self._classifier_names()[0])

    def reset_classifier(self, num_classes: int) -> None:
        """A freshly initialised classifier (and auxiliary heads) for ``num_classes`` classes;
        0 replaces it by ``nn.Identity`` so that the model returns its pooled features."""
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
            raise ConvzooError(f"reset_classifier: num_classes must be an int >= 0, "
                               f"got {num_classes!r}")
        for name in self._classifier_names():
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


def add_classifier_api(cls: type) -> type:
    """Put :class:`ClassifierAPI` first among ``cls``'s bases (once), so one definition serves
    every model class. A class that defines the methods itself keeps its own."""
    if not issubclass(cls, ClassifierAPI) and isinstance(cls, type) and issubclass(cls, nn.Module):
        cls.__bases__ = (ClassifierAPI, *cls.__bases__)
    return cls
