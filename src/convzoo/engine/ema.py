"""Exponential moving average of a model's weights (Polyak averaging).

``ema = decay x ema + (1 - decay) x weights`` every ``ema_steps`` optimizer steps, for floating
parameters and buffers alike (batch-norm running statistics included, as torchvision's reference
with ``use_buffers=True``); integer buffers (``num_batches_tracked``) are copied.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        # The state-dict tensors share storage with the parameters and buffers, and loading a
        # state dict copies into them, so the pairs are found once.
        self.pairs = self._pairs(model)

    def _pairs(
        self, model: nn.Module
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        mine, theirs = self.module.state_dict(), model.state_dict()
        if list(mine) != list(theirs):
            raise ValueError("EMA model and model have different state-dict keys")
        floats = [k for k, v in mine.items() if v.is_floating_point()]
        others = [k for k, v in mine.items() if not v.is_floating_point()]
        return (
            [mine[k] for k in floats],
            [theirs[k].detach() for k in floats],
            [mine[k] for k in others],
            [theirs[k] for k in others],
        )

    @torch.no_grad()
    def update(self) -> None:
        """Move the average toward the weights of the model given at construction."""
        ema_f, model_f, ema_o, model_o = self.pairs
        torch._foreach_lerp_(ema_f, model_f, 1.0 - self.decay)
        for e, m in zip(ema_o, model_o, strict=False):
            e.copy_(m)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(state)
