"""Optimizers and learning-rate schedules.

The learning rate at optimizer step ``s`` (0-based) is ``lr x warmup(s) x schedule(s) x
plateau``: ``warmup`` rises linearly from ``lr_warmup_decay`` to 1 over the warmup steps;
``schedule`` is one of cosine, step, multistep, exponential, one-cycle or constant, a pure
function of the step (:func:`lr_lambda`, shared with the NumPy engine); ``plateau`` is the factor
the plateau rule has reached, multiplied by ``lr_gamma`` each time the held-out error has not
improved for ``plateau_patience`` epochs (AlexNet §5, VGG §3.1, ResNet §3.4).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch

from .config import TrainConfig


def build_optimizer(
    cfg: TrainConfig, params: Iterable[torch.nn.Parameter]
) -> torch.optim.Optimizer:
    """SGD (+Nesterov), RMSProp (TensorFlow-style decay/epsilon values) or AdamW."""
    params = list(params)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.wd, nesterov=cfg.nesterov
        )
    if cfg.optimizer == "rmsprop":
        # Inception v3 §8: "RMSProp with decay of 0.9 and ε = 1.0". PyTorch adds ε outside the
        # square root, TensorFlow inside; with ε = 1.0 the two differ little.
        return torch.optim.RMSprop(
            params,
            lr=cfg.lr,
            alpha=cfg.rmsprop_alpha,
            eps=cfg.opt_eps if cfg.opt_eps is not None else 1.0,
            momentum=cfg.momentum,
            weight_decay=cfg.wd,
        )
    return torch.optim.AdamW(
        params, lr=cfg.lr, weight_decay=cfg.wd, eps=cfg.opt_eps if cfg.opt_eps is not None else 1e-8
    )


def total_steps(cfg: TrainConfig, steps_per_epoch: int) -> int:
    total = cfg.epochs * steps_per_epoch
    return min(total, cfg.max_steps) if cfg.max_steps else total


def lr_lambda(cfg: TrainConfig, steps_per_epoch: int) -> Callable[[int], float]:
    """Multiplier of the peak lr at optimizer step ``step`` (0-based): warmup x schedule.

    The plateau rule is not part of it (it depends on validation results; see
    :class:`LRSchedule`); for ``plateau`` this is the warmup alone.
    """
    spe = max(1, steps_per_epoch)
    total = total_steps(cfg, spe)
    warm = int(round(cfg.lr_warmup_epochs * spe))
    floor = cfg.lr_min / cfg.lr

    def warmup(step: int) -> float:
        if step >= warm:
            return 1.0
        return cfg.lr_warmup_decay + (1.0 - cfg.lr_warmup_decay) * step / warm

    def cosine(step: int) -> float:
        # Annealed over the steps after warmup, as torchvision chains warmup and cosine.
        span = max(1, total - warm)
        t = min(max(step - warm, 0), span) / span
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * t))

    def step_decay(step: int) -> float:
        return cfg.lr_gamma ** ((step // spe) // cfg.lr_step_epochs)

    def multistep(step: int) -> float:
        at = step if cfg.lr_milestone_unit == "step" else step // spe
        return cfg.lr_gamma ** sum(at >= m for m in cfg.lr_milestones)

    def exponential(step: int) -> float:
        return cfg.lr_gamma ** (step // spe)  # per epoch, as torch's ExponentialLR per epoch

    def onecycle(step: int) -> float:
        # Smith & Topin 2017, torch's defaults: from lr/25 up to lr (cosine), then down to
        # lr/25e4 (cosine). The warmup is the rising half, so lr_warmup_epochs is ignored.
        up = max(1, int(cfg.onecycle_pct * total))
        start, end = 1 / 25, 1 / 25e4
        if step < up:
            return start + (1 - start) * 0.5 * (1 - math.cos(math.pi * step / up))
        t = min(step - up, total - up) / max(1, total - up)
        return end + (1 - end) * 0.5 * (1 + math.cos(math.pi * t))

    def constant(step: int) -> float:
        return 1.0

    main = {
        "cosine": cosine,
        "step": step_decay,
        "multistep": multistep,
        "exponential": exponential,
        "plateau": constant,
        "constant": constant,
    }.get(cfg.lr_scheduler)
    if cfg.lr_scheduler == "onecycle":
        return onecycle

    def schedule(step: int) -> float:
        return warmup(step) * main(step)

    return schedule


class LRSchedule:
    """Sets the optimizer's lr before each step; holds the plateau state (checkpointed)."""

    def __init__(self, cfg: TrainConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int):
        self.cfg = cfg
        self.optimizer = optimizer
        self.fn = lr_lambda(cfg, steps_per_epoch)
        self.factor = 1.0  # plateau factor
        self.best: float | None = None  # best held-out top-1 error so far
        self.bad_epochs = 0
        self.drops = 0

    def lr_at(self, step: int) -> float:
        return self.cfg.lr * self.fn(step) * self.factor

    def set(self, step: int) -> float:
        lr = self.lr_at(step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def end_epoch(self, val_err: float | None) -> bool:
        """Feed the epoch's held-out top-1 error to the plateau rule; True if the lr dropped."""
        if self.cfg.lr_scheduler != "plateau" or val_err is None:
            return False
        if self.best is None or val_err < self.best - self.cfg.plateau_threshold:
            self.best, self.bad_epochs = val_err, 0
            return False
        self.bad_epochs += 1
        limit = self.cfg.plateau_max_drops
        if self.bad_epochs > self.cfg.plateau_patience and (limit is None or self.drops < limit):
            self.factor *= self.cfg.lr_gamma
            self.drops += 1
            self.bad_epochs = 0
            return True
        return False

    def state_dict(self) -> dict[str, Any]:
        return {
            "factor": self.factor,
            "best": self.best,
            "bad_epochs": self.bad_epochs,
            "drops": self.drops,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.factor = state["factor"]
        self.best = state["best"]
        self.bad_epochs = state["bad_epochs"]
        self.drops = state["drops"]
