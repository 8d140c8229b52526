"""What every model file shares: the early, named input check."""

from __future__ import annotations

import torch

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
